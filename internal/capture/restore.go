package capture

import (
	"bufio"
	"slices"
	"strings"
)

// Restore is t as iptables-restore input: our chains declared, the rules,
// COMMIT. With --noflush, declaring a chain that exists flushes it, so the
// chains' own rules are replaced, not duplicated; the jumps from the
// built-in chains are handled by ApplyScript.
func (t Table) Restore() string {
	var b strings.Builder
	b.WriteString("*" + t.Table + "\n")
	for _, c := range t.Chains {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	for _, r := range t.Rules {
		b.WriteString(r.String() + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// Text is the whole rule set as `gitmesh capture --dry-run` prints it: each
// table's iptables-restore input under a comment naming the command that
// would read it.
func (rs RuleSet) Text() string {
	var b strings.Builder
	for i, t := range rs.Tables() {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("# " + RestoreCommand(t.Family) + " --noflush\n")
		b.WriteString(t.Restore())
	}
	return b.String()
}

// ApplyScript is the iptables-restore input that installs t over the
// current state saved (iptables-save output of the same table), in one
// transaction: our chains declared (created, or flushed if they exist),
// every existing jump from another chain into ours deleted, then t's rules
// appended. Running it again leaves the same rules: nothing is duplicated,
// and a jump left by an older rule set goes too.
func ApplyScript(t Table, saved string) string {
	var b strings.Builder
	clearChains(&b, t, saved)
	for _, r := range t.Rules {
		b.WriteString(r.String() + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// clearChains opens t's table and empties our chains in it: each declared
// (created, or flushed if it exists) and every jump into them from the
// state saved deleted.
func clearChains(b *strings.Builder, t Table, saved string) {
	b.WriteString("*" + t.Table + "\n")
	for _, c := range t.Chains {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	for _, j := range jumpsInto(saved, t.Table, t.Chains) {
		b.WriteString(j + "\n")
	}
}

// CleanupScript is the iptables-restore input that removes t's chains and
// every jump into them from the state saved. Declaring the chains first
// makes it succeed when they are already gone (and flushes them, so no rule
// of ours still references another of our chains when it is deleted).
func CleanupScript(t Table, saved string) string {
	var b strings.Builder
	clearChains(&b, t, saved)
	for _, c := range t.Chains {
		b.WriteString("-X " + c + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// jumpsInto reads the table of iptables-save output and returns, as
// delete commands (-D CHAIN ARGS), every rule of a chain not in ours that
// jumps (-j) or goes (-g) to one of ours. iptables-save prints a rule the
// way iptables-restore accepts it back, so the delete matches exactly.
func jumpsInto(saved, table string, ours []string) []string {
	var out []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(saved))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "*"):
			in = line == "*"+table
			continue
		case line == "COMMIT":
			in = false
			continue
		case !in || !strings.HasPrefix(line, "-A "):
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || slices.Contains(ours, f[1]) {
			continue
		}
		for i := 2; i+1 < len(f); i++ {
			if (f[i] == "-j" || f[i] == "-g" || f[i] == "--jump" || f[i] == "--goto") && slices.Contains(ours, f[i+1]) {
				out = append(out, "-D"+strings.TrimPrefix(line, "-A"))
				break
			}
		}
	}
	return out
}

// HasChains reports whether the saved table has any of our chains or a
// jump into them: what Cleanup must leave false.
func HasChains(saved, table string) bool {
	if len(jumpsInto(saved, table, Chains())) > 0 {
		return true
	}
	in := false
	for _, line := range strings.Split(saved, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "*") {
			in = line == "*"+table
			continue
		}
		if in && strings.HasPrefix(line, ":") {
			name, _, _ := strings.Cut(line[1:], " ")
			if slices.Contains(Chains(), name) {
				return true
			}
		}
	}
	return false
}
