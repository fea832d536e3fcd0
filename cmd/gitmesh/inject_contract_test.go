package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/spf13/cobra"
)

// TestInjectedCommandsParse holds the injection template and the commands
// it runs to one contract: every gitmesh command line in the injection
// goldens (reconciler/inject/testdata/out) parses with the real command's
// flags, required flags included. A flag renamed on one side and not the
// other fails here, not in a pod.
func TestInjectedCommandsParse(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "reconciler", "inject", "testdata", "out", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no injection goldens: %v", err)
	}
	commands := map[string]func() *cobra.Command{
		"agent":   func() *cobra.Command { return newAgentCmd(&globalFlags{}) },
		"capture": newCaptureCmd,
	}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var golden struct {
			Patch []struct {
				Path  string          `json:"path"`
				Value json.RawMessage `json:"value"`
			} `json:"patch"`
		}
		if err := json.Unmarshal(b, &golden); err != nil {
			continue // the bad-annotation case has no patch
		}
		for _, op := range golden.Patch {
			if op.Path != "/spec/initContainers" && op.Path != "/spec/containers" {
				continue
			}
			var cs []corev1.Container
			if err := json.Unmarshal(op.Value, &cs); err != nil {
				t.Fatalf("%s %s: %v", f, op.Path, err)
			}
			for _, c := range cs {
				if len(c.Command) < 2 || c.Command[0] != "gitmesh" {
					continue
				}
				newCmd, ok := commands[c.Command[1]]
				if !ok {
					t.Errorf("%s: container %s runs gitmesh %s, which this test does not know", filepath.Base(f), c.Name, c.Command[1])
					continue
				}
				cmd := newCmd()
				args := append(c.Command[2:], c.Args...)
				if err := cmd.ParseFlags(args); err != nil {
					t.Errorf("%s: container %s: gitmesh %s %v: %v", filepath.Base(f), c.Name, c.Command[1], args, err)
					continue
				}
				if err := cmd.ValidateRequiredFlags(); err != nil {
					t.Errorf("%s: container %s: %v", filepath.Base(f), c.Name, err)
				}
				seen[c.Command[1]] = true
			}
		}
	}
	for name := range commands {
		if !seen[name] {
			t.Errorf("no golden runs gitmesh %s", name)
		}
	}
}
