package model

import "testing"

// TestEffectiveMTLS pins the one default both policies and render use: a
// mesh built in Go without mesh.mtls is STRICT, as the CUE schema's default.
func TestEffectiveMTLS(t *testing.T) {
	for _, tc := range []struct {
		mesh, svc, want MTLSMode
	}{
		{"", "", MTLSStrict},
		{MTLSPermissive, "", MTLSPermissive},
		{MTLSPermissive, MTLSDisable, MTLSDisable},
		{"", MTLSPermissive, MTLSPermissive},
	} {
		m := &Mesh{Mesh: MeshConfig{MTLS: tc.mesh}}
		if got := m.EffectiveMTLS(&Service{MTLS: tc.svc}); got != tc.want {
			t.Errorf("mesh %q, service %q: EffectiveMTLS = %q, want %q", tc.mesh, tc.svc, got, tc.want)
		}
	}
	if got := (&Mesh{}).EffectiveMTLS(nil); got != MTLSStrict {
		t.Errorf("nil service: EffectiveMTLS = %q, want %q", got, MTLSStrict)
	}
}
