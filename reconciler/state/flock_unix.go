//go:build unix

package state

import (
	"os"
	"syscall"
)

// errWouldBlock is what flock returns when another holder has the lock.
var errWouldBlock error = syscall.EWOULDBLOCK

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
