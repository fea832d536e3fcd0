package main

import (
	"os"
	"testing"

	"github.com/gitmesh/gitmesh/internal/kubetest"
	"github.com/gitmesh/gitmesh/schema"
)

// TestMain stops the shared Kubernetes API server (started only by the
// tests that use it) after all tests. Commands run in the test binary
// start their evaluation worker from this binary too, so it answers as
// the real binary's main does.
func TestMain(m *testing.M) {
	if schema.IsSandboxWorker(os.Args) {
		os.Exit(schema.RunSandboxWorker(os.Args))
	}
	kubetest.Main(m)
}
