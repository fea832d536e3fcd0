package capture

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Backend installs and removes a rule set: Exec through iptables-restore,
// NFT through nftables over netlink (Linux only).
type Backend interface {
	Apply(ctx context.Context, rs RuleSet) error
	Cleanup(ctx context.Context, ipv6 bool) error
}

var _ Backend = Exec{}

// Exec runs iptables-save and iptables-restore (ip6tables-* for IPv6) as
// found on PATH: on Debian that is whichever of iptables-nft and
// iptables-legacy update-alternatives selects, and the rules are the same
// for both.
type Exec struct {
	// Prefix is prepended to every command, such as ["ip", "netns", "exec",
	// "NAME"] to act in another network namespace (the tests do).
	Prefix []string
}

// RestoreCommand is the command that reads family f's rules:
// iptables-restore or ip6tables-restore.
func RestoreCommand(f Family) string {
	if f == IPv6 {
		return "ip6tables-restore"
	}
	return "iptables-restore"
}

func saveCommand(f Family) string {
	if f == IPv6 {
		return "ip6tables-save"
	}
	return "iptables-save"
}

// Apply installs rs: for each table, the current state is saved and one
// iptables-restore --noflush transaction replaces our chains' rules and
// the jumps into them (ApplyScript), so applying twice leaves one copy and
// rules outside our chains are untouched. Each table is one transaction:
// a refused IPv4 table changes nothing, but a refused IPv6 table leaves
// the IPv4 one installed (run again or --cleanup), as istio-iptables does.
func (e Exec) Apply(ctx context.Context, rs RuleSet) error {
	for _, t := range rs.Tables() {
		saved, err := e.Save(ctx, t.Family, t.Table)
		if err != nil {
			return err
		}
		if err := e.restore(ctx, t.Family, ApplyScript(t, saved)); err != nil {
			return err
		}
	}
	return nil
}

// Cleanup removes our chains and every jump into them from the nat table
// (and the IPv6 one with ipv6), leaving everything else. It succeeds when
// there is nothing to remove.
func (e Exec) Cleanup(ctx context.Context, ipv6 bool) error {
	families := []Family{IPv4}
	if ipv6 {
		families = append(families, IPv6)
	}
	for _, f := range families {
		t := Table{Family: f, Table: "nat", Chains: Chains()}
		saved, err := e.Save(ctx, f, t.Table)
		if err != nil {
			return err
		}
		if err := e.restore(ctx, f, CleanupScript(t, saved)); err != nil {
			return err
		}
	}
	return nil
}

// Save returns iptables-save's output for one table of family f.
func (e Exec) Save(ctx context.Context, f Family, table string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := e.command(ctx, saveCommand(f), "-t", table)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s -t %s: %s: %w", saveCommand(f), table, firstLine(stderr.String()), err)
	}
	return stdout.String(), nil
}

func (e Exec) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string(nil), e.Prefix...), name), args...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// restore feeds script to iptables-restore --noflush; when it refuses, the
// error names the line of the script it pointed at.
func (e Exec) restore(ctx context.Context, f Family, script string) error {
	var stderr bytes.Buffer
	cmd := e.command(ctx, RestoreCommand(f), "--noflush")
	cmd.Stdin = strings.NewReader(script)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return restoreError(RestoreCommand(f), script, stderr.String(), err)
	}
	return nil
}

// errorLine is how iptables-restore (legacy and nft) says where it stopped.
var errorLine = regexp.MustCompile(`(?m)^Error occurred at line: (\d+)`)

// restoreError builds the error of a failed restore: the rule at the line
// iptables-restore names, and its own complaint.
func restoreError(command, script, stderr string, err error) error {
	msg := firstLine(stderr)
	m := errorLine.FindStringSubmatch(stderr)
	if m == nil {
		return fmt.Errorf("%s --noflush: %s: %w", command, msg, err)
	}
	n, _ := strconv.Atoi(m[1])
	lines := strings.Split(script, "\n")
	if n < 1 || n > len(lines) {
		return fmt.Errorf("%s --noflush: line %d: %s: %w", command, n, msg, err)
	}
	// iptables-nft checks jump targets only when the transaction commits
	// and then blames COMMIT; its message quotes the name it could not
	// resolve ("Chain 'X' does not exist"), so name the rule that uses it.
	if strings.TrimSpace(lines[n-1]) == "COMMIT" {
		if q := quoted.FindStringSubmatch(msg); q != nil {
			for i, l := range lines[:n-1] {
				if slices.Contains(strings.Fields(l), q[1]) {
					n = i + 1
					break
				}
			}
		}
	}
	return fmt.Errorf("%s --noflush: line %d %q: %s: %w", command, n, lines[n-1], msg, err)
}

// quoted is a name iptables quotes in its complaint.
var quoted = regexp.MustCompile(`'([^']+)'`)

// firstLine is the first non-empty line of s, or "no message".
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return "no message"
}
