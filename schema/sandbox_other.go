//go:build !linux

package schema

import (
	"os"
	"os/exec"
	"runtime/debug"
)

// capMemory can only ask the Go runtime to collect harder where the
// kernel's address space cap and /proc are not used; the parent still
// reads a worker that dies of memory as the finding.
func capMemory(limit int64) (int64, error) {
	debug.SetMemoryLimit(limit)
	return limit, nil
}

func peakRSS() int64 { return 0 }

func exitRSS(*os.ProcessState) int64 { return 0 }

func workerAttr(*exec.Cmd) {}
