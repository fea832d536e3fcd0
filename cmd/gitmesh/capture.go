package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/gitmesh/gitmesh/internal/capture"
	"github.com/gitmesh/gitmesh/internal/proxyports"
)

func newCaptureCmd() *cobra.Command {
	var (
		c       = capture.Default()
		dryRun  bool
		cleanup bool
		output  string
		backend string
		// the list flags, registered below
		inbound, exclIn, exclOut *listValue[int]
		include, exclude         *listValue[netip.Prefix]
	)
	cmd := &cobra.Command{
		Use:   "capture",
		Short: "Install the iptables (or nftables) rules that send a pod's TCP through its sidecar",
		Long: `capture installs, in the current network namespace, the iptables rules
(nat table) that make a sidecar transparent, as Istio's istio-iptables does:
outbound TCP is redirected to the proxy's outbound listener (--outbound-port,
which reads the original destination), inbound TCP to its inbound listener
(--inbound-port), except the proxy's own uid and gid, loopback traffic,
the proxy's reserved ports and the ports and CIDRs excluded here. The chains
keep Istio's names (ISTIO_INBOUND, ISTIO_IN_REDIRECT, ISTIO_OUTPUT,
ISTIO_REDIRECT) so its runbooks apply.

It is what the injected init container runs (as root, with NET_ADMIN and
NET_RAW), once, before the application and the proxy start. Running it again
replaces the rules instead of adding a second copy; --cleanup removes them.
--dry-run prints the iptables-restore input and changes nothing.

--backend says how the rules are installed: "iptables" runs
iptables-restore (and ip6tables-restore) from PATH; "nftables" programs the
same rules through nftables over netlink, with no binary, in a table of its
own (table ip gitmesh, and ip6 gitmesh with --ipv6: base chains prerouting
and output at the nat priority, jumping to the ISTIO_* chains), which apply
deletes and recreates in one transaction and --cleanup deletes; its
--dry-run prints that table in nft syntax. "auto" (the default) uses
iptables when iptables-restore is on PATH and nftables otherwise, so the
init container, which runs the gitmesh image and has no iptables, works.

Flag values may also come from GITMESH_* variables (--inbound-ports is
GITMESH_INBOUND_PORTS). Istio's istio-iptables flags map as: -p
--outbound-port, -z --inbound-port, -u --proxy-uid, -g --proxy-gid, -b
--inbound-ports, -d --exclude-inbound-ports, -o --exclude-outbound-ports,
-i --include-outbound-cidrs, -x --exclude-outbound-cidrs.

Exit status: 0 when the rules are installed (or printed), 2 for usage errors
or when iptables refuses them (the error names the refused rule).`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{annoEnv: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The list flags were checked by checkFlags before RunE (see
			// flagcheck.go), so their parsed values are sound.
			c.InboundPorts = capture.Ports{All: inbound.all, List: inbound.items}
			c.ExcludeInboundPorts = exclIn.items
			c.ExcludeOutboundPorts = exclOut.items
			c.IncludeOutboundCIDRs = capture.CIDRs{All: include.all, List: include.items}
			c.ExcludeOutboundCIDRs = exclude.items
			w := cmd.OutOrStdout()
			backend = resolveBackend(backend)
			if cleanup {
				if backend == backendNFT {
					return runNFTCleanup(cmd, c.IPv6, dryRun, output)
				}
				return runCleanup(cmd, c.IPv6, dryRun, output)
			}
			rs, err := capture.Rules(c)
			if err != nil {
				return usageError("capture: %v", err)
			}
			var run capture.Backend = capture.Exec{}
			text, applied := rs.Text, func() string { return appliedText(rs.Tables()) }
			if backend == backendNFT {
				run = capture.NFT{}
				nft, err := rs.NFTText()
				if err != nil {
					return internalError(fmt.Errorf("capture: %w", err))
				}
				text, applied = func() string { return nft }, func() string { return appliedNFTText(rs.Tables()) }
			}
			if !dryRun {
				if err := run.Apply(cmd.Context(), rs); err != nil {
					return internalError(fmt.Errorf("capture: %w", err))
				}
			}
			return writeCaptureReport(w, output, captureReport{Action: "apply", Backend: backend, DryRun: dryRun, Tables: rs.Tables()},
				func() string {
					if dryRun {
						return text()
					}
					return applied()
				})
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.ProxyUID, "proxy-uid", proxyports.ProxyUID, "user id the proxy runs as: its traffic is never captured")
	f.IntVar(&c.ProxyGID, "proxy-gid", proxyports.ProxyGID, "group id the proxy runs as: its traffic is never captured")
	for _, id := range []string{"proxy-uid", "proxy-gid"} {
		flagMin(cmd, id, "1", "id 0 would exempt every root process of the pod from capture")
		flagMax(cmd, id, "4294967294")
	}
	f.IntVar(&c.OutboundPort, "outbound-port", proxyports.Outbound, "the proxy's outbound listener: outbound TCP is redirected here")
	f.IntVar(&c.InboundPort, "inbound-port", proxyports.Inbound, "the proxy's inbound listener: inbound TCP is redirected here")
	flagMax(cmd, "outbound-port", "65535")
	flagMax(cmd, "inbound-port", "65535")
	inbound = portsFlag(cmd, "inbound-ports", "*", `inbound ports to capture, comma-separated; "*" for all, "" for none`, true)
	exclIn = portsFlag(cmd, "exclude-inbound-ports", "", "inbound ports not to capture with --inbound-ports \"*\" (the proxy's ports "+reservedList()+" never are)", false)
	exclOut = portsFlag(cmd, "exclude-outbound-ports", "", "outbound destination ports not to capture (TCP and UDP)", false)
	include = cidrsFlag(cmd, "include-outbound-cidrs", "*", `outbound destinations to capture, comma-separated CIDRs; "*" for all`, true)
	exclude = cidrsFlag(cmd, "exclude-outbound-cidrs", "", "outbound destinations not to capture, comma-separated CIDRs", false)
	f.BoolVar(&c.IPv6, "ipv6", false, "also install the ip6tables rules (IPv6 CIDRs need it)")
	f.BoolVar(&dryRun, "dry-run", false, "print the rules (iptables-restore input) and change nothing")
	f.BoolVar(&cleanup, "cleanup", false, "remove the rules and chains instead of installing them")
	f.StringVar(&backend, "backend", backendAuto, `how to install the rules: "iptables" (iptables-restore), "nftables" (netlink, no binary) or "auto" (iptables when iptables-restore is on PATH, else nftables)`)
	flagOneOf(cmd, "backend", backendAuto, backendIptables, backendNFT)
	outputFlag(cmd, &output, "text", "json")
	describeEnv(f)
	return cmd
}

// runCleanup removes the chains (or, with dryRun, prints the
// iptables-restore input that would, for the current state).
func runCleanup(cmd *cobra.Command, ipv6, dryRun bool, output string) error {
	var run capture.Exec
	families := []capture.Family{capture.IPv4}
	if ipv6 {
		families = append(families, capture.IPv6)
	}
	rep := captureReport{Action: "cleanup", Backend: backendIptables, DryRun: dryRun}
	var text string
	for _, fam := range families {
		t := capture.Table{Family: fam, Table: "nat", Chains: capture.Chains()}
		rep.Tables = append(rep.Tables, t)
		if dryRun {
			saved, err := run.Save(cmd.Context(), fam, t.Table)
			if err != nil {
				return internalError(fmt.Errorf("capture --cleanup: %w", err))
			}
			if text != "" {
				text += "\n"
			}
			text += "# " + capture.RestoreCommand(fam) + " --noflush\n" + capture.CleanupScript(t, saved)
		} else {
			text += fmt.Sprintf("removed the %s nat table's capture chains and the jumps into them\n", fam)
		}
	}
	if !dryRun {
		if err := run.Cleanup(cmd.Context(), ipv6); err != nil {
			return internalError(fmt.Errorf("capture --cleanup: %w", err))
		}
	}
	return writeCaptureReport(cmd.OutOrStdout(), output, rep, func() string { return text })
}

// captureReport is capture's -o json output: what was (or, with dryRun,
// would be) installed or removed, table by table.
type captureReport struct {
	Action string `json:"action"`
	// Backend is the one used (auto resolved): iptables or nftables.
	Backend string          `json:"backend"`
	DryRun  bool            `json:"dryRun"`
	Tables  []capture.Table `json:"tables"`
}

func writeCaptureReport(w io.Writer, output string, rep captureReport, text func() string) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	_, err := io.WriteString(w, text())
	return err
}

func appliedText(tables []capture.Table) string {
	var s string
	for _, t := range tables {
		s += fmt.Sprintf("installed %d rules in the %s %s table\n", len(t.Rules), t.Family, t.Table)
	}
	return s
}

// The values of --backend.
const (
	backendAuto     = "auto"
	backendIptables = "iptables"
	backendNFT      = "nftables"
)

// resolveBackend turns auto into the backend used: iptables when
// iptables-restore is on PATH (as before there was a choice), else
// nftables, which needs no binary (the gitmesh image has none).
func resolveBackend(b string) string {
	if b != backendAuto {
		return b
	}
	if _, err := exec.LookPath(capture.RestoreCommand(capture.IPv4)); err == nil {
		return backendIptables
	}
	return backendNFT
}

// runNFTCleanup deletes our nftables tables (or, with dryRun, prints the
// nft commands that would).
func runNFTCleanup(cmd *cobra.Command, ipv6, dryRun bool, output string) error {
	rep := captureReport{Action: "cleanup", Backend: backendNFT, DryRun: dryRun}
	var text string
	fams := []capture.Family{capture.IPv4}
	if ipv6 {
		fams = append(fams, capture.IPv6)
	}
	for _, fam := range fams {
		rep.Tables = append(rep.Tables, capture.Table{Family: fam, Table: capture.NFTTable, Chains: capture.Chains()})
		text += fmt.Sprintf("removed the %s nftables table %s\n", fam, capture.NFTTable)
	}
	if dryRun {
		text = capture.NFTCleanupText(ipv6)
	} else if err := (capture.NFT{}).Cleanup(cmd.Context(), ipv6); err != nil {
		return internalError(fmt.Errorf("capture --cleanup: %w", err))
	}
	return writeCaptureReport(cmd.OutOrStdout(), output, rep, func() string { return text })
}

func appliedNFTText(tables []capture.Table) string {
	var s string
	for _, t := range tables {
		s += fmt.Sprintf("installed %d rules in the %s nftables table %s\n", len(t.Rules), t.Family, capture.NFTTable)
	}
	return s
}

// reservedList is proxyports.Reserved() for help text.
func reservedList() string {
	var s string
	for i, p := range proxyports.Reserved() {
		if i > 0 {
			s += ","
		}
		s += strconv.Itoa(p)
	}
	return s
}
