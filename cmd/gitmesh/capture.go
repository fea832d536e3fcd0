package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
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
		// the list flags, registered below
		inbound, exclIn, exclOut *listValue[int]
		include, exclude         *listValue[netip.Prefix]
	)
	cmd := &cobra.Command{
		Use:   "capture",
		Short: "Install the iptables rules that send a pod's TCP through its sidecar",
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
			run := capture.Exec{}
			if cleanup {
				return runCleanup(cmd, run, c.IPv6, dryRun, output)
			}
			rs, err := capture.Rules(c)
			if err != nil {
				return usageError("capture: %v", err)
			}
			if !dryRun {
				if err := run.Apply(cmd.Context(), rs); err != nil {
					return internalError(fmt.Errorf("capture: %w", err))
				}
			}
			return writeCaptureReport(w, output, captureReport{Action: "apply", DryRun: dryRun, Tables: rs.Tables()},
				func() string {
					if dryRun {
						return rs.Text()
					}
					return appliedText(rs.Tables())
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
	outputFlag(cmd, &output, "text", "json")
	describeEnv(f)
	return cmd
}

// runCleanup removes the chains (or, with dryRun, prints the
// iptables-restore input that would, for the current state).
func runCleanup(cmd *cobra.Command, run capture.Exec, ipv6, dryRun bool, output string) error {
	families := []capture.Family{capture.IPv4}
	if ipv6 {
		families = append(families, capture.IPv6)
	}
	rep := captureReport{Action: "cleanup", DryRun: dryRun}
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
	Action string          `json:"action"`
	DryRun bool            `json:"dryRun"`
	Tables []capture.Table `json:"tables"`
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
