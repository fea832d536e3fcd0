package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gitmesh/gitmesh/internal/capture"
)

// TestCaptureCommandNetns runs `gitmesh capture` for real in a network
// namespace made for the test, with each backend (and with auto and no
// iptables on PATH, as in the gitmesh image): it installs the rules
// (twice, leaving one copy) and --cleanup removes them. internal/capture's TestCaptureNetns
// proves what the rules do to connections; this proves the command wires
// flags to them and applies them. It skips like that test (not root, no
// ip or iptables, no netns), and fails instead with GITMESH_REQUIRE_NETNS=1.
func TestCaptureCommandNetns(t *testing.T) {
	skip := func(format string, a ...any) {
		t.Helper()
		if os.Getenv("GITMESH_REQUIRE_NETNS") == "1" {
			t.Fatalf("capture command netns test cannot run: "+format, a...)
		}
		t.Skipf("SKIPPED capture command netns test: "+format+"; run it as root with iptables and iproute2", a...)
	}
	if os.Geteuid() != 0 {
		skip("not root (euid %d)", os.Geteuid())
	}
	for _, bin := range []string{"ip", "iptables-restore", "iptables-save"} {
		if _, err := exec.LookPath(bin); err != nil {
			skip("%s not on PATH", bin)
		}
	}
	b := make([]byte, 4)
	rand.Read(b)
	ns := "gm-cap-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		skip("ip netns add: %s: %v", strings.TrimSpace(string(out)), err)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })

	// runIn runs the CLI in-process on a thread inside ns: the
	// iptables-restore it starts inherits the thread's namespace. The
	// thread is never unlocked, so the runtime discards it afterwards.
	runIn := func(args ...string) (code int, out, errOut string) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread()
			f, err := os.Open("/run/netns/" + ns)
			if err != nil {
				code, errOut = -1, err.Error()
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				code, errOut = -1, err.Error()
				return
			}
			code, out, errOut = runCLI(t, args...)
		}()
		<-done
		return code, out, errOut
	}
	nftState := func() string {
		s, err := capture.NFT{NetNS: "/run/netns/" + ns}.NFTState(capture.IPv4)
		if err != nil {
			t.Fatalf("nftables state in %s: %v", ns, err)
		}
		return s
	}
	nftWant := []string{"table ip gitmesh\n", "chain output\n", "rule *expr.Verdict&{Kind:-3 Chain:ISTIO_OUTPUT}\n",
		// tcp dport 5432 return (the port big endian)
		"Data:[6]} *expr.Payload&{OperationType:0 DestRegister:1 SourceRegister:0 Base:2 Offset:2 Len:2 CsumType:0 CsumOffset:0 CsumFlags:0} *expr.Cmp&{Op:0 Register:1 Data:[21 56]}"}
	for _, bk := range []struct {
		backend string
		// emptyPath runs gitmesh with no iptables on PATH, as in the
		// gitmesh image the injected init container runs.
		emptyPath bool
		applied   string
		// state is what is installed; want are pieces of it that must
		// appear once after two runs; gone says nothing is left.
		state func() string
		want  []string
		gone  func(string) bool
	}{
		{
			backend: "iptables",
			applied: "installed 22 rules in the ipv4 nat table\n",
			state: func() string {
				out, err := exec.Command("ip", "netns", "exec", ns, "iptables-save", "-t", "nat").Output()
				if err != nil {
					t.Fatalf("iptables-save in %s: %v", ns, err)
				}
				return string(out)
			},
			want: []string{"-A OUTPUT -j ISTIO_OUTPUT\n", "-A ISTIO_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN\n"},
			gone: func(s string) bool { return !strings.Contains(s, "ISTIO_") },
		},
		{
			backend: "nftables",
			applied: "installed 22 rules in the ipv4 nftables table gitmesh\n",
			state:   nftState,
			want:    nftWant,
			gone:    func(s string) bool { return s == "" },
		},
		{
			backend:   "auto",
			emptyPath: true,
			applied:   "installed 22 rules in the ipv4 nftables table gitmesh\n",
			state:     nftState,
			want:      nftWant,
			gone:      func(s string) bool { return s == "" },
		},
	} {
		t.Run(bk.backend, func(t *testing.T) {
			if bk.emptyPath {
				t.Setenv("PATH", t.TempDir())
			}
			for range 2 {
				code, out, errOut := runIn("capture", "--backend", bk.backend, "--exclude-outbound-ports", "5432")
				if code != exitOK || out != bk.applied {
					t.Fatalf("gitmesh capture: exit %d, stdout %q, stderr %q", code, out, errOut)
				}
			}
			s := bk.state()
			for _, want := range bk.want {
				if strings.Count(s, want) != 1 {
					t.Errorf("after capture twice, %q appears %d times, want once:\n%s", want, strings.Count(s, want), s)
				}
			}
			if code, _, errOut := runIn("capture", "--backend", bk.backend, "--cleanup"); code != exitOK {
				t.Fatalf("gitmesh capture --cleanup: exit %d: %s", code, errOut)
			}
			if s := bk.state(); !bk.gone(s) {
				t.Fatalf("rules left after --cleanup:\n%s", s)
			}
		})
	}
}
