package capture

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitmesh/gitmesh/internal/proxyports"
	"github.com/gitmesh/gitmesh/internal/skiplog"
)

// EnvRequireNetns turns this test's skip into a failure. CI (.ci/run) sets
// it, as root with iptables and iproute2 installed, so the capture rules
// cannot silently stop being tested.
const EnvRequireNetns = "GITMESH_REQUIRE_NETNS"

// EnvSkipLog names a file a skip's reason is appended to; make test sets
// it and prints one line when the file is not empty.
const EnvSkipLog = "GITMESH_NETNS_SKIP_LOG"

// The addresses of the test's two namespaces, joined by a veth pair: the
// pod (where the rules are installed and the proxy's listeners run) and a
// peer that owns the VIPs (on its lo) and dials the pod from outside.
const (
	podIP      = "10.253.0.2"
	peerIP     = "10.253.0.1"
	vip        = "10.254.0.10" // a service VIP: routed via the peer, so a connect leaves via OUTPUT
	excludedIP = "10.254.1.10" // a VIP in an excluded outbound CIDR
	appUID     = 1000
	appPort    = 9080
	// outboundExcludedPort and inboundExcludedPort are excluded by flags.
	outboundExcludedPort = 9443
	inboundExcludedPort  = 9090
)

// skipNetns skips (or, with EnvRequireNetns=1, fails) loudly, naming what
// is missing and how to run the test.
func skipNetns(t *testing.T, format string, a ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, a...)
	if os.Getenv(EnvRequireNetns) == "1" {
		t.Fatalf("capture netns test cannot run: %s (%s=1 forbids skipping)", reason, EnvRequireNetns)
	}
	skiplog.Record(EnvSkipLog, reason)
	t.Skipf("SKIPPED capture netns test: %s; to run it: as root, apt-get install iptables iproute2, "+
		"and set %s=1 so that a skip fails instead", reason, EnvRequireNetns)
}

// TestCaptureNetns installs the capture rules in a network namespace made
// for the test and proves with SO_ORIGINAL_DST where connections land:
// (a) an application's connection to VIP:port reaches the outbound
// listener with its original destination; (b) the proxy's uid and gid are
// not captured; (c) excluded outbound ports and CIDRs pass; (d) an inbound
// connection to the pod reaches the inbound listener with its original
// destination; (e) excluded inbound ports and the proxy's reserved ports
// are not redirected; loopback is handled as Istio does; (f) applying
// twice leaves one copy, and cleanup removes everything.
func TestCaptureNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		skipNetns(t, "not root (euid %d): network namespaces and iptables need CAP_SYS_ADMIN and CAP_NET_ADMIN", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skipNetns(t, "ip not on PATH")
	}
	// The same assertions, for each backend, each in namespaces of its own.
	for _, bk := range []struct {
		name string
		new  func(t *testing.T, pod string) netnsBackend
	}{
		{"iptables", newIptablesBackend},
		{"nftables", newNFTBackend},
	} {
		t.Run(bk.name, func(t *testing.T) { testCaptureNetns(t, bk.new) })
	}
}

// netnsBackend is a Backend acting in the test's pod namespace, with what
// the test needs to look at its state.
type netnsBackend struct {
	Backend
	// state is the installed rules of family f, comparable between runs.
	state func(t *testing.T, f Family) string
	// installed reports whether anything of ours is left in family f.
	installed func(t *testing.T, f Family) bool
	// hasIPv6Exclusion reports whether the IPv6 table excludes fd00:10::/64.
	hasIPv6Exclusion func(t *testing.T) bool
}

func newIptablesBackend(t *testing.T, pod string) netnsBackend {
	for _, bin := range []string{"iptables-restore", "iptables-save", "ip6tables-restore", "ip6tables-save"} {
		if _, err := exec.LookPath(bin); err != nil {
			skipNetns(t, "%s not on PATH", bin)
		}
	}
	e := Exec{Prefix: []string{"ip", "netns", "exec", pod}}
	// The kernel may refuse the nat table (no nf_nat, or a sandbox that
	// forbids netfilter): only that is a reason to skip.
	if _, err := e.Save(context.Background(), IPv4, "nat"); err != nil {
		skipNetns(t, "the kernel refuses the nat table in a network namespace: %v", err)
	}
	return netnsBackend{
		Backend: e,
		state:   func(t *testing.T, f Family) string { return savedRules(t, e, f) },
		installed: func(t *testing.T, f Family) bool {
			s, _ := e.Save(context.Background(), f, "nat")
			return HasChains(s, "nat")
		},
		hasIPv6Exclusion: func(t *testing.T) bool {
			return strings.Contains(savedRules(t, e, IPv6), "-A ISTIO_OUTPUT -d fd00:10::/64 -j RETURN")
		},
	}
}

func newNFTBackend(t *testing.T, pod string) netnsBackend {
	n := NFT{NetNS: "/run/netns/" + pod}
	state := func(t *testing.T, f Family) string {
		t.Helper()
		s, err := n.NFTState(f)
		if err != nil {
			t.Fatalf("list nftables state: %v", err)
		}
		return s
	}
	return netnsBackend{
		Backend:   n,
		state:     state,
		installed: func(t *testing.T, f Family) bool { return state(t, f) != "" },
		hasIPv6Exclusion: func(t *testing.T) bool {
			// fd00:10::/64: the first 8 bytes, masked, compared.
			s := state(t, IPv6)
			return strings.Contains(s, "Mask:[255 255 255 255 255 255 255 255 0 0 0 0 0 0 0 0]") &&
				strings.Contains(s, "Data:[253 0 0 16 0 0 0 0 0 0 0 0 0 0 0 0]")
		},
	}
}

func testCaptureNetns(t *testing.T, newBackend func(t *testing.T, pod string) netnsBackend) {
	pod, peer := newNetns(t), newNetns(t)
	be := newBackend(t, pod)

	suffix := strings.TrimPrefix(pod, "gm-cap-")
	vethPod, vethPeer := "gmc"+suffix+"a", "gmc"+suffix+"b"
	mustRun(t, "ip", "link", "add", vethPod, "netns", pod, "type", "veth", "peer", "name", vethPeer, "netns", peer)
	mustRun(t, "ip", "-n", pod, "link", "set", "lo", "up")
	mustRun(t, "ip", "-n", pod, "addr", "add", podIP+"/24", "dev", vethPod)
	mustRun(t, "ip", "-n", pod, "link", "set", vethPod, "up")
	mustRun(t, "ip", "-n", pod, "route", "add", "10.254.0.0/16", "via", peerIP)
	mustRun(t, "ip", "-n", peer, "link", "set", "lo", "up")
	mustRun(t, "ip", "-n", peer, "addr", "add", peerIP+"/24", "dev", vethPeer)
	mustRun(t, "ip", "-n", peer, "link", "set", vethPeer, "up")
	mustRun(t, "ip", "-n", peer, "addr", "add", vip+"/32", "dev", "lo")
	mustRun(t, "ip", "-n", peer, "addr", "add", excludedIP+"/32", "dev", "lo")

	// The proxy's virtual listeners, the application and the ports that
	// must not be captured, in the pod; the real services, at the peer.
	listen(t, pod, proxyports.Outbound, "outbound")
	listen(t, pod, proxyports.Inbound, "inbound")
	listen(t, pod, appPort, "app")
	listen(t, pod, inboundExcludedPort, "pod-excluded")
	listen(t, pod, proxyports.Health, "pod-health")
	listen(t, peer, appPort, "peer")
	listen(t, peer, outboundExcludedPort, "peer")

	c := Default()
	c.ExcludeInboundPorts = []int{inboundExcludedPort}
	c.ExcludeOutboundPorts = []int{outboundExcludedPort}
	c.ExcludeOutboundCIDRs = []netip.Prefix{netip.MustParsePrefix("10.254.1.0/24")}
	rs, err := Rules(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := be.Apply(ctx, rs); err != nil {
		t.Fatalf("apply: %v", err)
	}
	first := be.state(t, IPv4)

	app := owner{uid: appUID}
	proxyUID := owner{uid: proxyports.ProxyUID}
	proxyGID := owner{uid: appUID, gid: proxyports.ProxyGID}
	root := owner{}
	hp := func(ip string, port int) string { return net.JoinHostPort(ip, fmt.Sprint(port)) }
	captured := []struct {
		name     string
		ns       string
		who      owner
		dst      string
		want     string
		wantOrig string // "" when the listener reached is not a capture listener
	}{
		{"(a) app to VIP:port is captured outbound", pod, app, hp(vip, appPort), "outbound", hp(vip, appPort)},
		{"(b) the proxy uid is not captured", pod, proxyUID, hp(vip, appPort), "peer", ""},
		{"(b) the proxy gid is not captured", pod, proxyGID, hp(vip, appPort), "peer", ""},
		{"(c) an excluded outbound port passes", pod, app, hp(vip, outboundExcludedPort), "peer", ""},
		{"(c) an excluded outbound CIDR passes", pod, app, hp(excludedIP, appPort), "peer", ""},
		{"(d) inbound to podIP:port is captured inbound", peer, root, hp(podIP, appPort), "inbound", hp(podIP, appPort)},
		{"(e) an excluded inbound port is not redirected", peer, root, hp(podIP, inboundExcludedPort), "pod-excluded", ""},
		{"(e) the reserved health port is not redirected", peer, root, hp(podIP, proxyports.Health), "pod-health", ""},
		{"loopback: app to 127.0.0.1 is not captured", pod, app, hp("127.0.0.1", appPort), "app", ""},
		{"loopback: app to its own pod IP is not captured", pod, app, hp(podIP, appPort), "app", ""},
		{"loopback: the proxy to its own pod IP goes inbound", pod, proxyUID, hp(podIP, appPort), "inbound", hp(podIP, appPort)},
	}
	check := func(t *testing.T) {
		for _, tc := range captured {
			got, err := dial(tc.ns, tc.who, tc.dst)
			if err != nil {
				t.Errorf("%s: dial %s as %+v: %v", tc.name, tc.dst, tc.who, err)
				continue
			}
			name, orig, _ := strings.Cut(got, " ")
			if name != tc.want || (tc.wantOrig != "" && orig != tc.wantOrig) {
				t.Errorf("%s: %s as %+v reached %q, want listener %q with original destination %q", tc.name, tc.dst, tc.who, got, tc.want, tc.wantOrig)
			}
		}
	}
	t.Run("redirects", check)

	t.Run("(f) apply again is idempotent", func(t *testing.T) {
		for range 2 {
			if err := be.Apply(ctx, rs); err != nil {
				t.Fatalf("apply again: %v", err)
			}
		}
		if again := be.state(t, IPv4); again != first {
			t.Fatalf("rules after applying three times differ from after once:\nonce:\n%s\nthrice:\n%s", first, again)
		}
		check(t)
	})

	t.Run("(f) cleanup removes everything", func(t *testing.T) {
		for range 2 { // the second finds nothing to remove and succeeds
			if err := be.Cleanup(ctx, true); err != nil {
				t.Fatalf("cleanup: %v", err)
			}
		}
		if be.installed(t, IPv4) {
			t.Fatalf("rules left after cleanup:\n%s", be.state(t, IPv4))
		}
		if got, err := dial(pod, app, hp(vip, appPort)); err != nil || !strings.HasPrefix(got, "peer ") {
			t.Fatalf("after cleanup, app to VIP reached %q (%v), want the peer itself", got, err)
		}
		if err := be.Apply(ctx, rs); err != nil {
			t.Fatalf("apply after cleanup: %v", err)
		}
		if again := be.state(t, IPv4); again != first {
			t.Fatalf("rules re-applied after cleanup differ:\n%s\nwant:\n%s", again, first)
		}
	})

	t.Run("ipv6 rules load and clean up", func(t *testing.T) {
		c6 := c
		c6.IPv6 = true
		c6.ExcludeOutboundCIDRs = append(c6.ExcludeOutboundCIDRs, netip.MustParsePrefix("fd00:10::/64"))
		rs6, err := Rules(c6)
		if err != nil {
			t.Fatal(err)
		}
		if err := be.Apply(ctx, rs6); err != nil {
			t.Fatalf("apply with IPv6: %v", err)
		}
		if !be.hasIPv6Exclusion(t) {
			t.Fatalf("IPv6 rules lack the IPv6 exclusion:\n%s", be.state(t, IPv6))
		}
		if err := be.Cleanup(ctx, true); err != nil {
			t.Fatalf("cleanup: %v", err)
		}
		for _, f := range []Family{IPv4, IPv6} {
			if be.installed(t, f) {
				t.Fatalf("%s rules left after cleanup:\n%s", f, be.state(t, f))
			}
		}
	})

	t.Run("the dry-run text is what is installed", func(t *testing.T) {
		if _, ok := be.Backend.(NFT); !ok {
			t.Skip("nftables only")
		}
		// The backend needs no nft binary; when one is here, it proves
		// that --dry-run's text, loaded by nft, gives the table the
		// backend installs over netlink, as nft itself lists both.
		if _, err := exec.LookPath("nft"); err != nil {
			t.Skip("nft not on PATH (optional)")
		}
		if err := be.Apply(ctx, rs); err != nil {
			t.Fatal(err)
		}
		list := func() string {
			out, err := exec.Command("ip", "netns", "exec", pod, "nft", "list", "table", "ip", NFTTable).CombinedOutput()
			if err != nil {
				t.Fatalf("nft list: %s: %v", out, err)
			}
			return string(out)
		}
		viaNetlink := list()
		text, err := rs.NFTText()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", pod, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft -f: %s: %v\n%s", out, err, text)
		}
		if viaNft := list(); viaNft != viaNetlink {
			t.Fatalf("nft -f of the dry-run text:\n%s\ndiffers from the backend's table:\n%s", viaNft, viaNetlink)
		}
	})

	t.Run("a refused rule is named in the error", func(t *testing.T) {
		if _, ok := be.Backend.(Exec); !ok {
			// nftables refuses a whole batch with one errno (ENOENT for
			// the missing chain) and no position; the translation refuses
			// what it cannot spell (TestNFTRulesRefuse).
			t.Skip("iptables-restore only")
		}
		bad := RuleSet{V4: Table{Family: IPv4, Table: "nat", Chains: Chains(), Rules: []Rule{
			{Chain: ChainOutput, Args: []string{"-d", "127.0.0.1/32", "-j", "RETURN"}},
			{Chain: ChainOutput, Args: []string{"-p", "tcp", "-j", "NO_SUCH_CHAIN"}},
		}}}
		err := be.Apply(ctx, bad)
		if err == nil || !strings.Contains(err.Error(), `"-A ISTIO_OUTPUT -p tcp -j NO_SUCH_CHAIN"`) {
			t.Fatalf("got %v, want an error naming the refused rule", err)
		}
		if be.installed(t, IPv4) {
			t.Fatalf("a refused restore left chains behind:\n%s", be.state(t, IPv4))
		}
	})
}

// newNetns adds a network namespace with a random name and deletes it
// when the test ends, whatever happens (its veth end goes with it).
func newNetns(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "gm-cap-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		skipNetns(t, "the kernel refuses a network namespace: ip netns add: %s: %v", strings.TrimSpace(string(out)), err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %s: %v", name, out, err)
		}
	})
	return name
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %s: %v", name, strings.Join(args, " "), strings.TrimSpace(string(out)), err)
	}
}

// savedRules is iptables-save's nat table without its comments and
// counters, to compare two states.
func savedRules(t *testing.T, e Exec, f Family) string {
	t.Helper()
	s, err := e.Save(context.Background(), f, "nat")
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// inNetns runs fn on a fresh OS thread that has entered network namespace
// ns (and, with o set, creates sockets as that uid/gid). The thread is
// never unlocked, so the Go runtime discards it when fn returns and no
// other goroutine ever runs in the namespace or with the ids.
func inNetns(ns string, o owner, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		// The owner match (xt_owner, nft's meta skuid) reads the socket's
		// file credentials, taken from the creating thread's fsuid/fsgid:
		// set them on this thread only (the raw syscalls, not Go's
		// syscall.Setfsuid, which changes every thread of the process).
		if o.gid != 0 {
			unix.RawSyscall(unix.SYS_SETFSGID, uintptr(o.gid), 0, 0)
		}
		if o.uid != 0 {
			unix.RawSyscall(unix.SYS_SETFSUID, uintptr(o.uid), 0, 0)
		}
		errc <- fn()
	}()
	return <-errc
}

// owner is the uid and gid a test connection's socket belongs to (0: root).
type owner struct{ uid, gid int }

// listen starts a TCP listener on every address of ns at port that
// answers each connection with "NAME ORIGINAL_DST" (SO_ORIGINAL_DST, or
// "-" when the connection was not NATed) and closes it.
func listen(t *testing.T, ns string, port int, name string) {
	t.Helper()
	var l net.Listener
	err := inNetns(ns, owner{}, func() (err error) {
		l, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen on %d in %s: %v", port, ns, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			orig, err := originalDst(c.(*net.TCPConn))
			if err != nil {
				orig = "-"
			}
			fmt.Fprintf(c, "%s %s\n", name, orig)
			c.Close()
		}
	}()
}

// originalDst reads SO_ORIGINAL_DST (getsockopt SOL_IP 80): the
// destination the connection had before a REDIRECT, as Envoy's
// original_dst listener filter does.
func originalDst(c *net.TCPConn) (string, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return "", err
	}
	var addr *unix.IPv6Mreq // 16 bytes: a struct sockaddr_in fits
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		addr, gerr = unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
	}); err != nil {
		return "", err
	}
	if gerr != nil {
		return "", gerr
	}
	raw := addr.Multiaddr // sockaddr_in: family(2) port(2, big endian) addr(4)
	port := binary.BigEndian.Uint16(raw[2:4])
	ip := netip.AddrFrom4([4]byte(raw[4:8]))
	return netip.AddrPortFrom(ip, port).String(), nil
}

// dial connects from ns as o to dst and returns the line the listener
// that accepted it wrote.
func dial(ns string, o owner, dst string) (string, error) {
	var line string
	err := inNetns(ns, o, func() error {
		c, err := net.DialTimeout("tcp4", dst, 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		line, err = bufio.NewReader(c).ReadString('\n')
		if errors.Is(err, syscall.ECONNRESET) {
			return fmt.Errorf("reset before an answer: %w", err)
		}
		line = strings.TrimSpace(line)
		return err
	})
	return line, err
}
