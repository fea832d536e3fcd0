package schema

import (
	"fmt"
	"sort"
	"strings"

	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"

	"github.com/gitmesh/gitmesh/schema/model"
)

// cueError is one CUE error reduced to what a diagnostic needs.
type cueError struct {
	path   string
	format string
	args   []any
	pos    []token.Pos
}

func (c cueError) msg() string { return fmt.Sprintf(c.format, c.args...) }

// addErr records each error in err. code "" picks GM0002 or GM0003 by the
// kind of error.
func (e *evaluator) addErr(code string, err error) {
	for _, ce := range cueErrors(err, "", e.entity) {
		msg := ce.msg()
		c := code
		if c == "" {
			c = CodeSchema
			if isIncomplete(msg) {
				c = CodeIncomplete
			}
		}
		e.add(c, ce.path, msg, ce.pos)
	}
}

// cueErrors flattens err into readable errors: disjunctions collapsed,
// known patterns in words. prefix is prepended to every path (for values
// checked away from their place, like a guardrail against #Guardrail);
// errors without a path get fallback.
func cueErrors(err error, prefix, fallback string) []cueError {
	var errs []cueError
	for _, ce := range cueerrors.Errors(err) {
		format, args := ce.Msg()
		path := cuePath(ce.Path())
		switch {
		case path == "":
			path = fallback
		case prefix != "":
			path = prefix + "." + path
		}
		errs = append(errs, cueError{path: path, format: format, args: args, pos: cueerrors.Positions(ce)})
	}
	errs = userConflicts(collapseDisjunctions(errs))
	for i := range errs {
		if msg := errs[i].msg(); friendlier(msg) != msg {
			errs[i] = cueError{path: errs[i].path, format: "%s", args: []any{friendlier(msg)}, pos: errs[i].pos}
		}
	}
	return errs
}

// collapseDisjunctions turns CUE's "N errors in empty disjunction" followed
// by one error per alternative into one readable error: the specific
// errors when there are some (a bound that failed), else
// `invalid value "htp" (want one of "grpc", "http")`.
//
// Everything after the header at or under its path belongs to it (nested
// disjunctions, a default over an enum, repeat the header). When some of
// those errors are below the header's path, a value inside the struct is
// wrong and only they are reported: the alternatives at the struct itself
// (such as `struct.MinFields(2) | error("set exactly one of …")`) failed
// because of that value, and reporting them too would be false.
func collapseDisjunctions(errs []cueError) []cueError {
	var out []cueError
	for i := 0; i < len(errs); i++ {
		ce := errs[i]
		if !isDisjunction(ce) {
			out = append(out, ce)
			continue
		}
		var alts, deeper []cueError
		for i+1 < len(errs) && isUnder(errs[i+1].path, ce.path) {
			i++
			switch a := errs[i]; {
			case a.path != ce.path:
				deeper = append(deeper, a)
			case !isDisjunction(a):
				alts = append(alts, a)
			}
		}
		if len(deeper) > 0 {
			out = append(out, collapseDisjunctions(deeper)...)
			continue
		}
		var specific, conflicts []cueError
		for _, a := range alts {
			if strings.HasPrefix(a.format, "conflicting values") && len(a.args) == 2 {
				conflicts = append(conflicts, a)
			} else {
				specific = append(specific, a)
			}
		}
		switch {
		case len(specific) > 0:
			out = append(out, specific...)
		case len(conflicts) > 1:
			out = append(out, oneOf(ce, conflicts))
		case len(conflicts) == 1:
			out = append(out, conflicts[0])
		default:
			out = append(out, ce)
		}
	}
	return out
}

func isDisjunction(ce cueError) bool {
	return strings.Contains(ce.format, "errors in empty disjunction")
}

// isUnder reports whether path is base or a path inside it.
func isUnder(path, base string) bool {
	if !strings.HasPrefix(path, base) {
		return false
	}
	rest := path[len(base):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// userConflicts drops, among several conflicts at one path, those against
// a schema default when a conflict between two user values is there: with
// namespace "a" in one file and "b" in another, "conflicting values "b"
// and "a"" is the news, "conflicting values "default" and "a"" is noise.
func userConflicts(errs []cueError) []cueError {
	userOnly := map[string]bool{}
	for _, ce := range errs {
		if strings.HasPrefix(ce.format, "conflicting values") && allUser(ce.pos) {
			userOnly[ce.path] = true
		}
	}
	out := errs[:0]
	for _, ce := range errs {
		if userOnly[ce.path] && strings.HasPrefix(ce.format, "conflicting values") && !allUser(ce.pos) {
			continue
		}
		out = append(out, ce)
	}
	return out
}

// allUser reports whether every position is in the user's files.
func allUser(pos []token.Pos) bool {
	for _, p := range pos {
		if strings.HasPrefix(p.Filename(), schemaPrefix) {
			return false
		}
	}
	return len(pos) > 0
}

// oneOf names the user's value (the side every conflict shares) and the
// alternatives the schema allows.
func oneOf(ce cueError, conflicts []cueError) cueError {
	count := map[string]int{}
	for _, c := range conflicts {
		a, b := fmt.Sprint(c.args[0]), fmt.Sprint(c.args[1])
		count[a]++
		if b != a {
			count[b]++
		}
	}
	var value string
	var want []string
	for v, n := range count {
		if n == len(conflicts) && value == "" {
			value = v
		} else {
			want = append(want, v)
		}
	}
	if value == "" {
		return conflicts[0]
	}
	sort.Strings(want)
	var pos []token.Pos
	for _, c := range conflicts {
		pos = append(pos, c.pos...)
	}
	return cueError{path: ce.path, format: "invalid value %s (want one of %s)",
		args: []any{value, strings.Join(want, ", ")}, pos: pos}
}

// isIncomplete tells missing values (GM0003) from wrong ones (GM0002); CUE
// does not expose its error codes through cue/errors.
func isIncomplete(msg string) bool {
	return strings.Contains(msg, "incomplete value") ||
		strings.Contains(msg, "required but not present") ||
		strings.Contains(msg, "non-concrete value")
}

// add records one diagnostic at the user's position for path: the field
// itself if the user wrote it, else a position CUE gave inside the user's
// files, else the nearest written parent.
func (e *evaluator) add(code, path, msg string, cuePos []token.Pos) {
	key := code + "\x00" + path + "\x00" + msg
	if e.seen[key] {
		return
	}
	e.seen[key] = true
	pos := e.position(path, cuePos)
	e.diags = append(e.diags, model.Diagnostic{Code: code, Severity: model.SeverityError, Pos: pos, Path: path, Message: msg})
}

func (e *evaluator) position(path string, cuePos []token.Pos) model.Pos {
	if p := e.sources.Lookup(path); p.IsValid() && e.exact(path) {
		return p
	}
	var user []model.Pos
	for _, cp := range cuePos {
		if cp.IsValid() && cp.Filename() != "" && !strings.HasPrefix(cp.Filename(), schemaPrefix) {
			user = append(user, toPos(cp, ""))
		}
	}
	if len(user) > 0 {
		sort.Slice(user, func(i, j int) bool { return lessPos(user[i], user[j]) })
		return user[0]
	}
	return e.sources.Lookup(path)
}

// exact reports whether path itself (not a parent) has a recorded position.
func (e *evaluator) exact(path string) bool {
	return path != "" && e.sources.Lookup(path) != e.sources.Lookup(model.ParentPath(path))
}

func lessPos(a, b model.Pos) bool {
	if a.File != b.File {
		return a.File < b.File
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Col < b.Col
}

// knownPatterns describe the schema's regular expressions in words; the
// raw pattern in "out of bound =~..." helps nobody.
var knownPatterns = []struct{ marker, want string }{
	{"(ns|us|µs|ms|s|m|h)", `want a duration like "1.5s" or "250ms"`},
	{"[-a-z0-9]*[a-z0-9]", "want a DNS label: lower case letters, digits and '-'"},
	{"[0-9a-f]{64}", "want 64 lower case hex digits"},
	{"https?://", "want an http:// or https:// URL: Envoy cannot pull oci:// images"},
	{"|6553[0-5])$", "want host:port with a port from 1 to 65535"},
}

// friendlier rewrites a regex bound failure of a known pattern, a
// duration Go cannot hold, a zero duration where more is needed, and the
// list length conflict that an empty list meets in [#X, ...#X].
func friendlier(msg string) string {
	if msg == "incompatible list lengths (0 and 1)" {
		return "must not be empty"
	}
	if v, ok := strings.CutSuffix(msg, " (does not satisfy time.Duration)"); ok {
		return v + " (want a duration of at most 2562047h)"
	}
	if i := strings.Index(msg, " (out of bound !~"); i >= 0 && strings.Contains(msg[i:], "(0+(") {
		return "must be greater than 0s (got " + strings.TrimPrefix(msg[:i], "invalid value ") + ")"
	}
	i := strings.Index(msg, " (out of bound =~")
	if i < 0 {
		return msg
	}
	for _, k := range knownPatterns {
		if strings.Contains(msg[i:], k.marker) {
			return msg[:i] + " (" + k.want + ")"
		}
	}
	return msg
}
