package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gitmesh/gitmesh/internal/proxyports"
)

// TestCaptureDryRun: --dry-run prints exactly the rules internal/capture
// pins in its golden files (flags map onto the Config fields), as text and
// as JSON, and installs nothing.
func TestCaptureDryRun(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"default", nil},
		{"excludes", []string{"--exclude-inbound-ports", fmt.Sprintf("9090, 8080,%d", proxyports.Health), "--exclude-outbound-ports", "9443,5432,9443",
			"--exclude-outbound-cidrs", "169.254.169.254/32,10.10.0.0/16"}},
		{"inbound-ports-include", []string{"--inbound-ports", "9080,8080", "--exclude-inbound-ports", "9090"}},
		{"no-inbound", []string{"--inbound-ports", ""}},
		{"ipv6", []string{"--ipv6", "--exclude-outbound-cidrs", "10.10.0.0/16,fd00:10::/64", "--include-outbound-cidrs", "10.96.0.0/12,fd00:96::/108"}},
		{"other-ids-and-ports", []string{"--proxy-uid", "2000", "--proxy-gid", "3000", "--outbound-port", "16001", "--inbound-port", "16006"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("..", "..", "internal", "capture", "testdata", tc.golden+".golden"))
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI(t, append([]string{"capture", "--dry-run", "--backend", "iptables"}, tc.args...)...)
			if code != exitOK || out != string(want) {
				t.Fatalf("exit %d, stderr %q; stdout:\n%s\nwant:\n%s", code, errOut, out, want)
			}
			code, out, errOut = runCLI(t, append([]string{"capture", "--dry-run", "--backend", "iptables", "-o", "json"}, tc.args...)...)
			var rep captureReport
			if code != exitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Action != "apply" || rep.Backend != "iptables" || !rep.DryRun || len(rep.Tables) == 0 {
				t.Fatalf("-o json: exit %d, stderr %q:\n%s", code, errOut, out)
			}
			for _, tb := range rep.Tables {
				if !strings.Contains(string(want), tb.Restore()) {
					t.Errorf("-o json holds other %s rules than -o text:\n%s", tb.Family, tb.Restore())
				}
			}
			// The nftables backend prints the same rules in nft syntax,
			// as internal/capture pins them (on Linux, the backend's OS).
			if runtime.GOOS != "linux" {
				return
			}
			wantNFT, err := os.ReadFile(filepath.Join("..", "..", "internal", "capture", "testdata", tc.golden+".nft.golden"))
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut = runCLI(t, append([]string{"capture", "--dry-run", "--backend", "nftables"}, tc.args...)...)
			if code != exitOK || out != string(wantNFT) {
				t.Fatalf("--backend nftables: exit %d, stderr %q; stdout:\n%s\nwant:\n%s", code, errOut, out, wantNFT)
			}
		})
	}
}

// TestCaptureFlags: bad ports, CIDRs, ids and combinations are usage
// errors naming the flag (or variable) before anything is installed.
func TestCaptureFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  [2]string
		want string
	}{
		{[]string{"--exclude-outbound-ports", "9080,70000"}, [2]string{}, `--exclude-outbound-ports: port "70000": must be a number between 1 and 65535 (got "9080,70000")`},
		{[]string{"--exclude-inbound-ports", "0"}, [2]string{}, `--exclude-inbound-ports: port "0": must be a number between 1 and 65535`},
		{[]string{"--inbound-ports", "http"}, [2]string{}, `--inbound-ports: port "http": must be a number between 1 and 65535`},
		{[]string{"--inbound-ports", "*,9080"}, [2]string{}, `--inbound-ports: "*" means all and cannot be combined with a list`},
		{[]string{"--exclude-outbound-ports", "*"}, [2]string{}, `--exclude-outbound-ports: "*" is not allowed here`},
		{[]string{"--exclude-outbound-cidrs", "10.0.0.0/33"}, [2]string{}, `--exclude-outbound-cidrs: CIDR "10.0.0.0/33": want an address/prefix-length`},
		{[]string{"--exclude-outbound-cidrs", "10.1.2.3/16"}, [2]string{}, `--exclude-outbound-cidrs: CIDR "10.1.2.3/16": has host bits set (want "10.1.0.0/16")`},
		{[]string{"--include-outbound-cidrs", "10.0.0.1"}, [2]string{}, `--include-outbound-cidrs: CIDR "10.0.0.1": want an address/prefix-length`},
		{[]string{"--outbound-port", "65536"}, [2]string{}, `--outbound-port: must be at most 65535 (got "65536")`},
		{[]string{"--proxy-uid", "0"}, [2]string{}, `--proxy-uid: must be at least 1 (got "0")`},
		{[]string{"--proxy-gid", "4294967295"}, [2]string{}, `--proxy-gid: must be at most 4294967294`},
		{[]string{"-o", "yaml"}, [2]string{}, `--output: want text or json (got "yaml")`},
		{[]string{"--backend", "ipfw"}, [2]string{}, `--backend: want auto, iptables or nftables (got "ipfw")`},
		{nil, [2]string{"GITMESH_EXCLUDE_INBOUND_PORTS", "abc"}, `GITMESH_EXCLUDE_INBOUND_PORTS (--exclude-inbound-ports): port "abc"`},
		{[]string{"--inbound-ports", fmt.Sprintf("9080,%d", proxyports.Health)}, [2]string{}, fmt.Sprintf("capture: inbound ports[1]: %d is reserved for the proxy and never captured", proxyports.Health)},
		{[]string{"--include-outbound-cidrs", "fd00::/8"}, [2]string{}, `capture: included outbound CIDRs[0]: "fd00::/8" is IPv6 but IPv6 capture is off`},
		{[]string{"--exclude-outbound-cidrs", "0.0.0.0/0"}, [2]string{}, `excludes every address`},
		{[]string{"--inbound-port", fmt.Sprint(proxyports.Outbound)}, [2]string{}, `outbound port and inbound port: must differ`},
	} {
		t.Run(strings.Join(tc.args, " ")+tc.env[0], func(t *testing.T) {
			if tc.env[0] != "" {
				t.Setenv(tc.env[0], tc.env[1])
			}
			args := append([]string{"capture", "--dry-run"}, tc.args...)
			code, out, errOut := runCLI(t, args...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) || out != "" {
				t.Errorf("gitmesh %s: exit %d, stderr %q, stdout %q; want exit 2 and %q", strings.Join(args, " "), code, errOut, out, tc.want)
			}
		})
	}
}

// TestCaptureEnv: an init container can configure capture without argv.
func TestCaptureEnv(t *testing.T) {
	t.Setenv("GITMESH_EXCLUDE_OUTBOUND_PORTS", "5432")
	t.Setenv("GITMESH_BACKEND", "iptables")
	code, out, errOut := runCLI(t, "capture", "--dry-run")
	if code != exitOK || !strings.Contains(out, "-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN\n") {
		t.Fatalf("exit %d, stderr %q:\n%s", code, errOut, out)
	}
}

// TestCaptureBackendAuto: auto is iptables when iptables-restore is on
// PATH and nftables when it is not (the gitmesh image: no iptables), and
// the JSON report names the backend used.
func TestCaptureBackendAuto(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the nftables backend is Linux's")
	}
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	for _, tc := range []struct {
		name string
		prep func()
		want string
	}{
		{"no iptables-restore", func() {}, "nftables"},
		{"iptables-restore on PATH", func() {
			if err := os.WriteFile(filepath.Join(dir, "iptables-restore"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "iptables"},
	} {
		tc.prep()
		for _, args := range [][]string{{"capture", "--dry-run", "-o", "json"}, {"capture", "--cleanup", "--dry-run", "-o", "json"}} {
			if tc.want == "iptables" && args[1] == "--cleanup" {
				continue // the iptables cleanup dry-run runs iptables-save
			}
			code, out, errOut := runCLI(t, args...)
			var rep captureReport
			if code != exitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Backend != tc.want {
				t.Errorf("%s: gitmesh %s: exit %d, stderr %q, backend %q; want %q:\n%s", tc.name, strings.Join(args, " "), code, errOut, rep.Backend, tc.want, out)
			}
		}
	}
}

// TestCaptureNFTCleanupDryRun: --cleanup --dry-run with nftables prints
// the deletes of our tables (declared first, so a missing one is no error).
func TestCaptureNFTCleanupDryRun(t *testing.T) {
	code, out, errOut := runCLI(t, "capture", "--backend", "nftables", "--cleanup", "--dry-run", "--ipv6")
	want := "# nft -f -\ntable ip gitmesh\ndelete table ip gitmesh\ntable ip6 gitmesh\ndelete table ip6 gitmesh\n"
	if code != exitOK || out != want {
		t.Fatalf("exit %d, stderr %q; stdout:\n%s\nwant:\n%s", code, errOut, out, want)
	}
}
