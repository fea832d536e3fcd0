package check

import (
	"fmt"
	"io"
	"strings"
)

// maxMarkdownGroups bounds the per-proxy sections of a PR comment; GitHub
// refuses comments over 65,536 characters.
const maxMarkdownGroups = 40

// writeMarkdown writes a pull-request comment: a verdict, the impact
// summary, a findings table and one collapsed section per group of proxy
// classes with its diff.
func writeMarkdown(w io.Writer, rep *Report) error {
	ew := &errWriter{w: w}
	icon := "✅"
	if rep.Failed {
		icon = "❌"
	}
	ew.printf("### %s gitmesh check: %s\n\n", icon, verdict(rep))
	ew.printf("Mesh `%s`, base `%s` → head `%s`.\n\n", rep.Dir, mdRev(rep.Base), mdRev(rep.Head))
	ew.printf("**Impact:** %s\n\n", impactSummary(rep.Impact))
	if len(rep.Findings) > 0 {
		ew.printf("#### Findings\n\n| severity | code | location | message | status |\n| --- | --- | --- | --- | --- |\n")
		for _, f := range rep.Findings {
			status := string(f.Status)
			if f.Status == StatusSuppressed {
				status = "suppressed: " + f.Reason
			}
			ew.printf("| %s | %s | `%s` | %s | %s |\n", f.Severity, f.Code, mdCell(f.Location()),
				mdText(pathPrefix(f.Path)+f.Message), mdText(status))
		}
		ew.printf("\n")
	}
	if len(rep.Traffic) > 0 {
		ew.printf("#### Traffic tests that change outcome\n\n| test | base | head | outcome at base | outcome at head |\n| --- | --- | --- | --- | --- |\n")
		for _, c := range rep.Traffic {
			head := c.Head
			if c.Problem != "" {
				head += " — " + c.Problem
			}
			ew.printf("| `%s` | %s | %s | %s | %s |\n", mdCell(c.Name), verdictWord(c.Base != "", c.BasePassed),
				verdictWord(c.Head != "", c.HeadPassed), mdText(c.Base), mdText(head))
		}
		ew.printf("\n")
	}
	if len(rep.Impact.Groups) > 0 {
		ew.printf("#### Proxy changes\n\n")
	}
	for i, g := range rep.Impact.Groups {
		if i == maxMarkdownGroups {
			ew.printf("… and %d more groups of proxies; run `gitmesh check` locally for all of them.\n\n", len(rep.Impact.Groups)-i)
			break
		}
		names := make([]string, 0, len(g.Classes))
		for _, c := range g.Classes {
			names = append(names, "<code>"+htmlEscape(c)+"</code>")
		}
		list := strings.Join(names, ", ")
		if len(names) > 6 {
			list = fmt.Sprintf("%s and %d more", strings.Join(names[:5], ", "), len(names)-5)
		}
		ew.printf("<details><summary>%s: %s</summary>\n\n```diff\n", list, g.Change)
		for _, l := range groupLines(g) {
			op := string(l.op)
			if l.op == '~' {
				op = "!"
			}
			ew.printf("%s %s\n", op, strings.ReplaceAll(l.text, "```", "'''"))
		}
		ew.printf("```\n\n</details>\n\n")
	}
	return ew.err
}

func mdRev(r Revision) string {
	if r.Commit == "" {
		return mdCell(r.Name)
	}
	return mdCell(r.Name) + " @ " + short(r.Commit)
}

// mdCell escapes text for a code span inside a table cell: pipes end cells
// even inside backticks in GitHub's tables.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "`", "'", "\n", " ").Replace(s)
}

// mdText escapes plain table text: pipes, HTML and Markdown emphasis that
// untrusted messages could use to restyle the comment.
func mdText(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;",
		"*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`).Replace(s)
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
