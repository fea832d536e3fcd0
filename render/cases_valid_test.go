package render

import (
	"testing"

	"github.com/gitmesh/gitmesh/policies"
)

// knownInvalid lists golden cases that policies reject on purpose or still
// have to be fixed, with the reason; every other case must be a mesh that
// `gitmesh validate` accepts, so the goldens show what serve really serves.
var knownInvalid = map[string]string{
	// Its rules name namespaces no service runs in (GM0402), to show the
	// RBAC output for namespace sources.
	"authz": "GM0402 on namespaces ops and untrusted",
}

// TestCasesValidate checks every testdata case with policies, as validate
// does after loading.
func TestCasesValidate(t *testing.T) {
	for _, name := range cases(t) {
		if _, ok := knownInvalid[name]; ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if ds := policies.Check(loadCase(t, name)); ds.HasErrors() {
				t.Errorf("policies reject testdata/%s.cue:\n%v", name, ds)
			}
		})
	}
}
