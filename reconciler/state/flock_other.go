//go:build !unix

package state

import (
	"errors"
	"os"
)

// errWouldBlock never matches: without flock(2) the lock is advisory only
// in name, and Acquire always succeeds.
var errWouldBlock = errors.New("would block")

func flock(*os.File) error { return nil }
