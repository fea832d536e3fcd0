package policies

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitmesh/gitmesh/schema/model"
)

func TestVIPs(t *testing.T) {
	runCases(t, []checkCase{
		{"declared twice", func(m *model.Mesh) {
			m.Services["details"].Addresses = []string{"10.96.0.12"}
			m.Services["ratings"].Addresses = []string{"10.96.0.13", "10.96.0.12"}
			at(m, "services.ratings.addresses[1]", 4, 30)
		}, []string{
			`GM0304 error services/ratings.cue:4:30: services.ratings.addresses[1]: VIP "10.96.0.12" (declared) is also service "details"'s (declared); a VIP belongs to one service`,
		}},
		{"network address of the range", func(m *model.Mesh) {
			m.Mesh.VIPRange = "10.200.0.0/24"
			m.Services["details"].Addresses = []string{"10.200.0.255"}
			at(m, "services.details.addresses[0]", 4, 15)
		}, []string{
			`GM0305 error services/details.cue:4:15: services.details.addresses[0]: VIP "10.200.0.255" is the network or broadcast address of mesh.vipRange "10.200.0.0/24"`,
		}},
		{"range full", func(m *model.Mesh) {
			m.Mesh.VIPRange = "10.200.0.0/30"
			at(m, "mesh.vipRange", 3, 12)
		}, []string{
			`GM0306 warning mesh.cue:3:12: mesh.vipRange: no free address left in "10.200.0.0/30" for 2 services (first "ratings"): declare their addresses or widen the range`,
		}},
	})
}

// TestVIPFindingsDiscovered: a ClusterIP equal to another service's
// declared address is reported at the discovered service.
func TestVIPFindingsDiscovered(t *testing.T) {
	m := bookinfo()
	m.Services["details"].Addresses = []string{"10.96.0.12"}
	got := lines(VIPFindings(m, map[string][]string{"reviews": {"10.96.0.12"}, "ratings": {"10.96.0.14"}}))
	want := []string{`GM0304 error services/reviews.cue:1:1: services.reviews: VIP "10.96.0.12" (discovered) is also service "details"'s (declared); a VIP belongs to one service`}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// TestVIPFindingsOnlyDiscovered: clashes among declared VIPs are Check's,
// not repeated when discovery runs.
func TestVIPFindingsOnlyDiscovered(t *testing.T) {
	m := bookinfo()
	m.Services["details"].Addresses = []string{"10.96.0.12"}
	m.Services["ratings"].Addresses = []string{"10.96.0.12"}
	if got := VIPFindings(m, map[string][]string{"reviews": {"10.96.0.14"}}); len(got) != 0 {
		t.Errorf("got %v, want nothing", got)
	}
}
