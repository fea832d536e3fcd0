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
// asMainEnv makes the test binary behave as the gitmesh binary.
const asMainEnv = "GITMESH_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if schema.IsSandboxWorker(os.Args) {
		os.Exit(schema.RunSandboxWorker(os.Args))
	}
	if os.Getenv(asMainEnv) == "1" {
		// A test runs this binary as gitmesh itself, in its own process
		// (under a ulimit, say): os.Args[1:] are gitmesh's arguments.
		main()
	}
	kubetest.Main(m)
}
