package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gitmesh/gitmesh/internal/capture"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Flag values are checked in one place, checkFlags, for every command
// before it runs (root's PersistentPreRunE), after GITMESH_* variables are
// applied, so a value from the environment is held to the same bounds as
// one from argv. The rules come from the flag's type and annotations, not
// from code next to each flag:
//
//   - every duration, integer and float flag must be greater than zero: a zero or
//     negative interval, timeout, TTL, overlap or size is never meaningful
//     here, and silently replacing it with a default hides a typo;
//   - flagMin and flagMax tighten that for one flag (a TTL with a floor, a
//     port with a ceiling);
//   - flagOneOf lists the values a string flag takes (-o formats, kinds);
//   - a list of ports (portsFlag) holds ports 1..65535, a list of CIDRs
//     (cidrsFlag) prefixes net/netip parses, each optionally "*" for all.
const (
	annoMin   = "gitmesh/min"
	annoMax   = "gitmesh/max"
	annoOneOf = "gitmesh/one-of"
	annoWhy   = "gitmesh/why"
	// annoDeprecated holds the notice of an old flag name (deprecatedAlias).
	annoDeprecated = "gitmesh/deprecated"
	// annoEnv marks a command whose flags also read GITMESH_* variables.
	annoEnv = "gitmesh/env"
	// annoFromEnv marks a flag whose value came from its variable, so the
	// error names the variable the user has to fix.
	annoFromEnv = "gitmesh/from-env"
)

// flagMin sets the smallest value of a duration or integer flag, with the
// reason shown when it is refused.
func flagMin(cmd *cobra.Command, name, min, why string) {
	f := cmd.Flags()
	f.SetAnnotation(name, annoMin, []string{min})
	if why != "" {
		f.SetAnnotation(name, annoWhy, []string{why})
	}
}

// flagMax sets the largest value of a duration or integer flag.
func flagMax(cmd *cobra.Command, name, max string) {
	cmd.Flags().SetAnnotation(name, annoMax, []string{max})
}

// flagOneOf restricts a string flag to values ("" is accepted only as the
// flag's default, meaning "decide for me").
func flagOneOf(cmd *cobra.Command, name string, values ...string) {
	cmd.Flags().SetAnnotation(name, annoOneOf, values)
}

// outputFlag registers the output flag every command spells the same way:
// -o/--output with the formats it supports, the first being the default.
func outputFlag(cmd *cobra.Command, p *string, formats ...string) {
	cmd.Flags().StringVarP(p, "output", "o", formats[0], "output format: "+orList(formats))
	flagOneOf(cmd, "output", formats...)
}

// deprecatedAlias registers old as another name of the flag now, sharing
// its value (and so its checks), with a deprecation warning on use.
func deprecatedAlias(cmd *cobra.Command, old, now string) {
	f := cmd.Flags()
	nf := f.Lookup(now)
	f.Var(nf.Value, old, "deprecated: use --"+now)
	// Not pflag's MarkDeprecated: cobra prints its notice on stdout, into
	// the JSON a script is reading. prepareFlags warns on stderr instead.
	f.MarkHidden(old)
	f.SetAnnotation(old, annoDeprecated, []string{"use --" + now + " instead"})
}

// prepareFlags applies GITMESH_* variables (for commands annotated with
// annoEnv) and checks every flag of cmd.
func prepareFlags(cmd *cobra.Command, lookup func(string) (string, bool)) error {
	if cmd.Annotations[annoEnv] != "" {
		if err := applyEnv(cmd.Flags(), lookup); err != nil {
			return err
		}
	}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if d := f.Annotations[annoDeprecated]; len(d) > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "gitmesh: --%s is deprecated: %s\n", f.Name, d[0])
		}
	})
	return checkFlags(cmd.Flags())
}

// checkFlags checks every flag of fs against the rules above and returns
// the first violation as a usage error naming the flag (or the variable it
// came from) and the value.
func checkFlags(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || len(f.Annotations[annoDeprecated]) > 0 {
			return
		}
		if msg := checkFlag(f); msg != "" {
			err = usageError("%s: %s (got %q)%s", flagLabel(f), msg, f.Value.String(), why(f))
		}
	})
	return err
}

// checkFlag returns what is wrong with f's value, or "".
func checkFlag(f *pflag.Flag) string {
	anno := func(k string) string {
		if v := f.Annotations[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	switch f.Value.Type() {
	case "duration":
		d, perr := time.ParseDuration(f.Value.String())
		if perr != nil {
			return perr.Error()
		}
		if min := anno(annoMin); min != "" {
			if m, _ := time.ParseDuration(min); d < m {
				return "must be at least " + min
			}
		} else if d <= 0 {
			return "must be greater than 0s"
		}
		if max := anno(annoMax); max != "" {
			if m, _ := time.ParseDuration(max); d > m {
				return "must be at most " + max
			}
		}
	case "int", "int64", "int32", "uint", "uint64", "uint32":
		n, perr := strconv.ParseInt(f.Value.String(), 10, 64)
		if perr != nil {
			return perr.Error()
		}
		if min := anno(annoMin); min != "" {
			if m, _ := strconv.ParseInt(min, 10, 64); n < m {
				return "must be at least " + min
			}
		} else if n <= 0 {
			return "must be greater than 0"
		}
		if max := anno(annoMax); max != "" {
			if m, _ := strconv.ParseInt(max, 10, 64); n > m {
				return "must be at most " + max
			}
		}
	case "float64", "float32":
		x, perr := strconv.ParseFloat(f.Value.String(), 64)
		if perr != nil {
			return perr.Error()
		}
		if x <= 0 {
			return "must be greater than 0"
		}
		if max := anno(annoMax); max != "" {
			if m, _ := strconv.ParseFloat(max, 64); x > m {
				return "must be at most " + max
			}
		}
	case portsType, cidrsType:
		return f.Value.(interface{ problem() string }).problem()
	case "string":
		values := f.Annotations[annoOneOf]
		v := f.Value.String()
		if len(values) == 0 || (v == "" && f.DefValue == "") {
			return ""
		}
		for _, a := range values {
			if v == a {
				return ""
			}
		}
		return "want " + orList(values)
	}
	return ""
}

// why is the reason given for a flag's bounds, as ": reason", or "".
func why(f *pflag.Flag) string {
	if v := f.Annotations[annoWhy]; len(v) > 0 {
		return ": " + v[0]
	}
	return ""
}

// flagLabel names a flag as the user set it: --name, or the GITMESH_*
// variable it came from.
func flagLabel(f *pflag.Flag) string {
	if len(f.Annotations[annoFromEnv]) > 0 {
		return fmt.Sprintf("%s (--%s)", envName(f.Name), f.Name)
	}
	return "--" + f.Name
}

// orList joins values as "a, b or c".
func orList(values []string) string {
	if len(values) < 2 {
		return strings.Join(values, "")
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

// The pflag types of list flags checkFlag knows.
const (
	portsType = "ports"
	cidrsType = "cidrs"
)

// listValue is a comma-separated list flag of T, or "*" (all) when
// allowAll. Set never fails, so a bad value from argv or a GITMESH_*
// variable is reported by checkFlags like every other flag: parse's error
// is the problem, named by item.
type listValue[T any] struct {
	typ      string
	parse    func(item string) (T, error)
	raw      string
	allowAll bool
	all      bool
	items    []T
}

func newListFlag[T any](cmd *cobra.Command, typ, name, value, usage string, allowAll bool, parse func(string) (T, error)) *listValue[T] {
	v := &listValue[T]{typ: typ, parse: parse, allowAll: allowAll}
	v.Set(value)
	cmd.Flags().Var(v, name, usage)
	return v
}

// portsFlag registers a port-list flag with its default.
func portsFlag(cmd *cobra.Command, name, value, usage string, allowAll bool) *listValue[int] {
	return newListFlag(cmd, portsType, name, value, usage, allowAll, capture.ParsePort)
}

// cidrsFlag registers a CIDR-list flag with its default.
func cidrsFlag(cmd *cobra.Command, name, value, usage string, allowAll bool) *listValue[netip.Prefix] {
	return newListFlag(cmd, cidrsType, name, value, usage, allowAll, capture.ParseCIDR)
}

func (v *listValue[T]) String() string { return v.raw }
func (v *listValue[T]) Type() string   { return v.typ }

func (v *listValue[T]) Set(s string) error {
	v.raw, v.all, v.items = s, false, nil
	for _, item := range capture.ListItems(s) {
		if item == "*" {
			v.all = true
			continue
		}
		x, _ := v.parse(item) // problem reports what does not parse
		v.items = append(v.items, x)
	}
	return nil
}

func (v *listValue[T]) problem() string {
	items := capture.ListItems(v.raw)
	for _, item := range items {
		if item == "*" {
			if msg := starProblem(v.allowAll, len(items)); msg != "" {
				return msg
			}
			continue
		}
		if _, err := v.parse(item); err != nil {
			return err.Error()
		}
	}
	return ""
}

// starProblem is what is wrong with a "*" in a list of n items.
func starProblem(allowAll bool, n int) string {
	switch {
	case !allowAll:
		return `"*" is not allowed here: list the values`
	case n > 1:
		return `"*" means all and cannot be combined with a list`
	}
	return ""
}
