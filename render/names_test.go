package render

import "testing"

// TestParseOutboundCluster: the parser reads back what outboundCluster
// builds, and nothing else.
func TestParseOutboundCluster(t *testing.T) {
	for _, c := range []struct {
		port          int
		version, host string
	}{{9080, "v2", "reviews.default.svc.cluster.local"}, {443, "", "api.example.com"}} {
		port, version, host, ok := ParseOutboundCluster(outboundCluster(c.port, c.version, c.host))
		if !ok || port != c.port || version != c.version || host != c.host {
			t.Errorf("ParseOutboundCluster(outboundCluster(%d, %q, %q)) = %d, %q, %q, %v", c.port, c.version, c.host, port, version, host, ok)
		}
	}
	for _, n := range []string{inboundCluster(9080), BlackHoleCluster, tracingCluster("zipkin"), "outbound|x|v1|h", "outbound|80|v1"} {
		if _, _, _, ok := ParseOutboundCluster(n); ok {
			t.Errorf("ParseOutboundCluster(%q) ok, want not an outbound cluster", n)
		}
	}
}

// TestParseRBACPolicyName: the parser reads back what rbacPolicyName
// builds, and nothing else.
func TestParseRBACPolicyName(t *testing.T) {
	for _, c := range []struct {
		allow bool
		i     int
	}{{true, 0}, {false, 3}, {true, 12}} {
		allow, i, ok := ParseRBACPolicyName(rbacPolicyName(c.allow, c.i))
		if !ok || allow != c.allow || i != c.i {
			t.Errorf("ParseRBACPolicyName(rbacPolicyName(%v, %d)) = %v, %d, %v", c.allow, c.i, allow, i, ok)
		}
	}
	for _, n := range []string{"", "allow", "allow-x", "permit-1", "deny_1"} {
		if _, _, ok := ParseRBACPolicyName(n); ok {
			t.Errorf("ParseRBACPolicyName(%q) ok, want not a policy name", n)
		}
	}
}
