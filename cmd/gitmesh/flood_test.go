package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcstatus "google.golang.org/grpc/status"
)

// TestServeFloodRSS is issue 12's acceptance on a real serve process: 20
// connections, each with a valid mesh certificate and a 3 MB node id,
// leave /api/v1/proxies and /api/v1/drift under 1 MB and the process's
// resident set flat (measured from /proc, not the Go heap).
func TestServeFloodRSS(t *testing.T) {
	meshDir, stateDir, out := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "reviews")
	if err := os.WriteFile(filepath.Join(meshDir, "mesh.cue"), []byte(strictMesh), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"certs", "init", "--state-dir", stateDir},
		{"certs", "issue", "--proxy", "sidecar/default/reviews/v1/r-0", "--dir", meshDir, "--state-dir", stateDir, "--out", out},
	} {
		if code, _, stderr := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "serve", "--dir", meshDir, "--state-dir", stateDir, "--xds-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--xds-server-names", "localhost")
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	xdsAddr, httpAddr := serveAddrs(t, stderr)
	base := "http://" + httpAddr
	waitFor(t, 20*time.Second, "readyz", func() bool { code, _ := httpGet(t, base+"/readyz"); return code == 200 })

	pair, err := tls.LoadX509KeyPair(filepath.Join(out, "cert.pem"), filepath.Join(out, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(out, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	reviews := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, ServerName: "localhost"})
	// One good proxy first, so the baseline includes a served stream.
	if _, err := adsSecrets(t, xdsAddr, reviews, "sidecar/default/reviews/v1/r-0"); err != nil {
		t.Fatalf("reviews as itself: %v", err)
	}
	before := vmRSS(t, cmd.Process.Pid)

	huge := "sidecar/default/reviews/v1/" + strings.Repeat("a", 3<<20)
	for i := range 20 {
		_, err := adsSecrets(t, xdsAddr, reviews, huge)
		if grpcstatus.Code(err) != codes.InvalidArgument {
			t.Fatalf("attempt %d: %v, want InvalidArgument", i, err)
		}
	}
	for _, path := range []string{"/api/v1/proxies", "/api/v1/drift"} {
		code, body := httpGet(t, base+path)
		if code != 200 || len(body) > 1<<20 {
			t.Errorf("GET %s: %d, %d bytes; want 200 under 1 MB", path, code, len(body))
		}
	}
	after := vmRSS(t, cmd.Process.Pid)
	t.Logf("serve RSS %d MiB before, %d MiB after 20 × 3 MB node ids", before>>20, after>>20)
	if grew := after - before; grew > 64<<20 {
		t.Errorf("serve's resident set grew by %d MiB, want under 64 MiB", grew>>20)
	}
}

// serveAddrs reads the xDS and status addresses from serve's "serving" log
// line, and keeps draining its log so it never blocks.
func serveAddrs(t *testing.T, log io.Reader) (xdsAddr, httpAddr string) {
	t.Helper()
	re := regexp.MustCompile(`msg=serving .*xds=(\S+) http=(\S+)`)
	found := make(chan [2]string, 1)
	var (
		mu   sync.Mutex
		seen bytes.Buffer
	)
	go func() {
		sc := bufio.NewScanner(log)
		sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- [2]string{m[1], m[2]}
			}
			mu.Lock()
			if seen.Len() < 64<<10 {
				seen.WriteString(sc.Text() + "\n")
			}
			mu.Unlock()
		}
	}()
	select {
	case a := <-found:
		return a[0], a[1]
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("serve did not log its addresses; its log:\n%s", seen.String())
	}
	return "", ""
}

// vmRSS is a process's resident set in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
