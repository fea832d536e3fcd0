// Command gitmesh is a GitOps control plane for Envoy service meshes: it
// loads a mesh described in CUE from Git, validates it, renders it into
// Envoy configuration and serves it over xDS.
//
// This package only parses flags and wires packages together; the logic
// lives in schema, policies, render and reconciler so tests can call it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/gitmesh/gitmesh/schema"
)

func main() {
	if schema.IsSandboxWorker(os.Args) {
		// This process is the evaluation worker of a gitmesh that loads a
		// repository (see schema.Sandbox), not a command line.
		os.Exit(schema.RunSandboxWorker(os.Args))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
