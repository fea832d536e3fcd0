package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockName is the lock file inside the state dir.
const lockName = "lock"

// ErrLocked means another process holds the state dir.
var ErrLocked = errors.New("state dir in use")

// Lock is a state dir held by this process, so that two `gitmesh serve`
// never write one last good state (each would restore the other's, and the
// Git cache under it is not safe for two writers). It is an flock(2) on
// DIR/lock: the kernel drops it when the process dies, kill -9 included,
// so a crash never leaves a stale lock. The file holds the holder's pid,
// for the message the next one gets.
type Lock struct {
	f *os.File
}

// Acquire locks dir, creating it, or fails at once (it never waits) with
// an error wrapping ErrLocked that names the holder's pid.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock state dir: %w", err)
	}
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state dir: %w", err)
	}
	if err := flock(f); err != nil {
		holder := "unknown pid"
		if b, rerr := os.ReadFile(path); rerr == nil && strings.TrimSpace(string(b)) != "" {
			holder = "pid " + strings.TrimSpace(string(b))
		}
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%w: %s is locked by another gitmesh serve (%s); give each serve its own --state-dir", ErrLocked, dir, holder)
		}
		return nil, fmt.Errorf("lock state dir %s: %w", dir, err)
	}
	// Only the holder writes the pid, after it holds the lock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release unlocks the state dir. The file stays: removing it would let a
// process that opened it before the removal lock a file nobody else sees.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor drops the flock
	l.f = nil
	return err
}
