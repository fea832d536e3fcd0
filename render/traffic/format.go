package traffic

import (
	"strconv"
	"strings"
)

// Text prints an outcome's trace, one hop a line, indented under weighted
// splits, then the outcome: what `gitmesh explain` prints.
//
//	sidecar/default/productpage/v1  listener  0.0.0.0_9080  wildcard address, original destination port 9080
func Text(o *Outcome) string {
	var b strings.Builder
	class := ""
	for _, h := range o.Hops {
		if h.Class != class {
			class = h.Class
			b.WriteString(class + "\n")
		}
		b.WriteString(strings.Repeat("  ", h.Depth+1))
		b.WriteString(h.Step)
		if h.Name != "" {
			b.WriteString(" " + h.Name)
		}
		if h.Share != 100 {
			b.WriteString(" [" + pct(h.Share) + "]")
		}
		if h.Detail != "" {
			b.WriteString(": " + h.Detail)
		}
		if h.Pos != "" {
			b.WriteString("  (" + h.Pos + ")")
		} else if h.Origin != "" {
			b.WriteString("  (" + h.Origin + ")")
		}
		b.WriteByte('\n')
	}
	b.WriteString("outcome: " + Summary(o) + "\n")
	return b.String()
}

// Summary is the outcome in one line.
func Summary(o *Outcome) string {
	parts := []string{"routed to " + Shares(o.To)}
	if s := statusesOnly(o); s != "" {
		parts = append(parts, s)
	}
	if o.Timeout != nil {
		parts = append(parts, "timeout "+dur(*o.Timeout))
	}
	if r := o.Retries; r != nil {
		s := "retries " + itoa(r.Attempts)
		if r.PerTryTimeout != nil {
			s += " per try " + dur(*r.PerTryTimeout)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func statusesOnly(o *Outcome) string {
	c := *o
	c.To = nil
	s := statuses(&c)
	if s == "nothing" {
		return ""
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }
