package main

import (
	"testing"

	"github.com/gitmesh/gitmesh/internal/kubetest"
)

// TestMain stops the shared Kubernetes API server (started only by the
// tests that use it) after all tests.
func TestMain(m *testing.M) { kubetest.Main(m) }
