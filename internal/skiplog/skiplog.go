// Package skiplog records why a test that needs something this machine
// lacks (a kube-apiserver, root and iptables) skipped: go test shows
// nothing of a passing package's skips without -v, so each skip is also
// appended to the file a GITMESH_*_SKIP_LOG variable names, and make test
// prints one line when that file is not empty.
package skiplog

import (
	"fmt"
	"os"
)

// Record appends line to the file the variable env names, if it is set. A
// failure to write only loses the summary line.
func Record(env, line string) {
	path := os.Getenv(env)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}
