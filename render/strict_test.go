package render

import (
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

// TestEnvoyStrictGoldenAndExamples renders every golden case and every
// example: render runs the Envoy-strict check (render/envoystrict) on
// every bundle, so a case with any finding fails to render, and the
// findings are printed with their positions.
func TestEnvoyStrictGoldenAndExamples(t *testing.T) {
	for name, m := range meshesUnderTest(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := Render(Input{Mesh: m}); err != nil {
				ds, ok := err.(model.Diagnostics)
				if !ok {
					t.Fatalf("render: %v", err)
				}
				for _, d := range ds {
					t.Errorf("%s %s", d.Code, d.Error())
				}
			}
		})
	}
}
