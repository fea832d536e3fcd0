package kubetest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Environment variables that steer the harness.
const (
	// EnvAPIServer overrides the kube-apiserver binary path.
	EnvAPIServer = "GITMESH_KUBE_APISERVER"
	// EnvEtcd overrides the etcd binary path (default: etcd on PATH).
	EnvEtcd = "GITMESH_ETCD"
	// EnvRequire turns a missing binary from a skip into a failure; CI sets
	// it so that the Kubernetes tests cannot silently stop running.
	EnvRequire = "GITMESH_REQUIRE_KUBE"
	// EnvSkipLog names a file each skipped test's name is appended to;
	// make test sets it and prints one line when the file is not empty.
	EnvSkipLog = "GITMESH_KUBE_SKIP_LOG"
)

// errMissing marks a binary that is not installed, which is a reason to skip
// (not fail) unless EnvRequire is set.
var errMissing = errors.New("missing binary")

// binaries finds kube-apiserver and etcd, or says how to get them.
func binaries() (apiserver, etcd string, err error) {
	apiserver = os.Getenv(EnvAPIServer)
	if apiserver == "" {
		cache, cerr := os.UserCacheDir()
		if cerr != nil {
			return "", "", fmt.Errorf("%w: kube-apiserver: no cache dir (%v); set %s", errMissing, cerr, EnvAPIServer)
		}
		apiserver = filepath.Join(cache, "gitmesh-test", "kube-apiserver")
	}
	if _, serr := os.Stat(apiserver); serr != nil {
		return "", "", fmt.Errorf("%w: kube-apiserver not found at %s: build it with internal/kubetest/build-kube-apiserver.sh (or set %s)",
			errMissing, apiserver, EnvAPIServer)
	}
	etcd = os.Getenv(EnvEtcd)
	if etcd == "" {
		p, lerr := exec.LookPath("etcd")
		if lerr != nil {
			return "", "", fmt.Errorf("%w: etcd not on PATH: apt-get install etcd-server (or set %s)", errMissing, EnvEtcd)
		}
		etcd = p
	} else if _, serr := os.Stat(etcd); serr != nil {
		return "", "", fmt.Errorf("%w: etcd not found at %s (from %s)", errMissing, etcd, EnvEtcd)
	}
	return apiserver, etcd, nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// Several test binaries run at once, so fixed ports (2379, 6443) would clash;
// the listeners are held until all n are chosen so the n differ.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// process is one child (etcd or kube-apiserver) with its log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startProcess starts bin with args, output to dir/name.log. The child gets
// SIGKILL when the test binary dies, so a crashed or killed test run leaves
// no etcd or kube-apiserver behind.
func startProcess(dir, name, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop kills the process (by its own PID) and waits for it. SIGKILL is what
// the tests want: an API server that vanishes at once, like a lost network.
func (p *process) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// stopGracefully asks the process to end (SIGTERM) and kills it if it has
// not within grace.
func (p *process) stopGracefully(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.stop()
	}
}

// tail returns the last lines of the process's log, for error messages.
func (p *process) tail(lines int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	all := strings.Split(string(bytes.TrimRight(b, "\n")), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
