// Package private checks the files that hold secrets (the CA key, webhook
// secrets) the same way everywhere: a secret other local users can read is
// already leaked, so it is refused, not used.
package private

import (
	"fmt"
	"os"
)

// CheckFile refuses path when its group or others have any permission on
// it (mode & 0o077 != 0). The error names the file and its mode and says
// how to fix it; callers prefix what the file is.
func CheckFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s is readable by others (mode %04o); chmod 600 it", path, perm)
	}
	return nil
}
