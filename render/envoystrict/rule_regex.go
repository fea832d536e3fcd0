package envoystrict

import (
	"fmt"
	"regexp/syntax"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Rule: every regex Envoy compiles is one RE2 accepts, within RE2's
// program size limit.
//
// Envoy compiles every envoy.type.matcher.v3.RegexMatcher when it loads
// the config (route path and header matches, query parameters, regex
// rewrites, RBAC string matchers): Regex::Utility::parseRegex →
// CompiledGoogleReMatcher (source/common/common/regex.cc) throws
// "Invalid regex '{}': {}" when RE2 refuses the pattern, and "regex '{}'
// RE2 program size of {} > max program size of {} set for the error level
// threshold" above re2.max_program_size.error_level (default 100). Go's
// regexp/syntax implements RE2's grammar (model.CheckRegex, shared with
// the loader); its compiled program is RE2's instruction set, so its
// length stands in for RE2's ProgramSize.
//
// The walk is generic over message fields (not a list of known fields), so
// a matcher render adds later is checked without touching this rule.

// maxProgramSize is Envoy's default re2.max_program_size.error_level.
const maxProgramSize = 100

// regexes checks every regex of a route (match, headers, query
// parameters, rewrites).
func (rw *routeWalk) regexes() {
	rw.w.c.eachRegex(rw.rt.ProtoReflect(), func(re string) {
		if err := checkRE2(re); err != nil {
			rw.errorf(CodeInvalidValue, "%v", err)
		}
	})
}

// httpRBACRegexes and netRBACRegexes check the string matchers of RBAC
// filters.
func (w *walk) httpRBACRegexes(a *anypb.Any) {
	if r, ok := open(w, a, newOf[rbachttpv3.RBAC]); ok {
		w.rbacRegexes(r.GetRules())
	}
}

func (w *walk) netRBACRegexes(a *anypb.Any) {
	if r, ok := open(w, a, newOf[rbacnetv3.RBAC]); ok {
		w.rbacRegexes(r.GetRules())
	}
}

func (w *walk) rbacRegexes(rules *rbacv3.RBAC) {
	if rules == nil {
		return
	}
	w.c.eachRegex(rules.ProtoReflect(), func(re string) {
		if err := checkRE2(re); err != nil {
			w.errorf(CodeInvalidValue, "rbac: %v", err)
		}
	})
}

// checkRE2 parses re as RE2 does and bounds its program size.
func checkRE2(re string) error {
	if err := model.CheckRegex(re); err != nil {
		return err
	}
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return err
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return err
	}
	if n := len(prog.Inst); n > maxProgramSize {
		return fmt.Errorf("regex %q: RE2 program size %d is more than Envoy's limit %d", re, n, maxProgramSize)
	}
	return nil
}

// regexMatcherName is the full name of envoy.type.matcher.v3.RegexMatcher.
var regexMatcherName = (&matcherv3.RegexMatcher{}).ProtoReflect().Descriptor().FullName()

// eachRegex calls fn with the regex of every RegexMatcher inside m. Any
// fields are not opened: the walk opens typed configs itself. Fields whose
// message type cannot hold a RegexMatcher (durations, wrappers, socket
// addresses, …) are skipped by type, which is most of a route's fields.
func (c *Checker) eachRegex(m protoreflect.Message, fn func(string)) {
	if m.Descriptor().FullName() == regexMatcherName {
		fn(m.Interface().(*matcherv3.RegexMatcher).GetRegex())
		return
	}
	if !c.mayHoldRegex(m.Descriptor()) {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil:
		case fd.IsList():
			if !c.mayHoldRegex(fd.Message()) {
				break
			}
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				c.eachRegex(l.Get(i).Message(), fn)
			}
		case fd.IsMap():
			if mv := fd.MapValue().Message(); mv != nil && c.mayHoldRegex(mv) {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					c.eachRegex(mv.Message(), fn)
					return true
				})
			}
		default:
			if c.mayHoldRegex(fd.Message()) {
				c.eachRegex(v.Message(), fn)
			}
		}
		return true
	})
}

// mayHoldRegex reports whether a message of type md can contain a
// RegexMatcher (itself, or in any field at any depth, not looking inside
// Any), memoised by type.
func (c *Checker) mayHoldRegex(md protoreflect.MessageDescriptor) bool {
	name := md.FullName()
	if v, ok := c.regexTypes[name]; ok {
		return v
	}
	// Every type reachable from md, cycles included (RBAC permissions
	// nest themselves): md may hold a RegexMatcher iff one is reachable.
	seen := map[protoreflect.FullName]bool{name: true}
	stack := []protoreflect.MessageDescriptor{md}
	found := false
	for len(stack) > 0 && !found {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if d.FullName() == regexMatcherName {
			found = true
			break
		}
		if v, ok := c.regexTypes[d.FullName()]; ok && d.FullName() != name {
			if v {
				found = true
			}
			continue
		}
		fields := d.Fields()
		for i := 0; i < fields.Len(); i++ {
			if fm := fields.Get(i).Message(); fm != nil && !seen[fm.FullName()] {
				seen[fm.FullName()] = true
				stack = append(stack, fm)
			}
		}
	}
	c.regexTypes[name] = found
	return found
}
