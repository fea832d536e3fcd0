//go:build unix

package state

import (
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestLockHeldByAnotherProcess: the lock is the kernel's, so a process that
// holds it (here flock(1), when installed) keeps gitmesh out, and its
// death frees the dir with no stale lock left behind.
func TestLockHeldByAnotherProcess(t *testing.T) {
	flockBin, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("flock(1) not installed")
	}
	dir := t.TempDir()
	l, err := Acquire(dir) // creates DIR/lock
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	cmd := exec.Command(flockBin, "-x", dir+"/lock", "sleep", "30")
	// Its own process group: flock(1) forks sleep, which inherits the
	// locked descriptor, so both must die to free it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	defer kill()
	// Wait until the child holds it.
	for i := 0; ; i++ {
		l, err := Acquire(dir)
		if errors.Is(err, ErrLocked) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
		if i > 200 {
			t.Fatal("flock(1) never took the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	kill()
	cmd.Wait()
	// Wait reaps flock(1) only; its sleep child, killed with the group,
	// exits a moment later, and the kernel drops the lock when it does.
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err = Acquire(dir)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("after the holder died: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.Release()
}
