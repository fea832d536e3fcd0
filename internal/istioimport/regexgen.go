package istioimport

import (
	"regexp"
	"regexp/syntax"
	"strings"
)

// sample returns a string the RE2 expression re matches as a whole (as
// Envoy's safe_regex does), built from its syntax tree: the first
// alternative, the least repetition, the first character of a class. ok
// is false when no such string is found; the caller then reports the
// route instead of generating a test that might lie.
func sample(re string) (string, bool) {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	if !gen(parsed.Simplify(), &b) {
		return "", false
	}
	full, err := regexp.Compile(`^(?:` + re + `)$`)
	if err != nil || !full.MatchString(b.String()) {
		return "", false
	}
	return b.String(), true
}

func gen(re *syntax.Regexp, b *strings.Builder) bool {
	switch re.Op {
	case syntax.OpLiteral:
		b.WriteString(string(re.Rune))
	case syntax.OpCharClass:
		if len(re.Rune) < 2 {
			return false
		}
		b.WriteRune(pick(re.Rune))
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteByte('a')
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpStar, syntax.OpQuest:
	case syntax.OpCapture:
		return gen(re.Sub[0], b)
	case syntax.OpPlus:
		return gen(re.Sub[0], b)
	case syntax.OpRepeat:
		for i := 0; i < re.Min; i++ {
			if !gen(re.Sub[0], b) {
				return false
			}
		}
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if !gen(s, b) {
				return false
			}
		}
	case syntax.OpAlternate:
		return gen(re.Sub[0], b)
	default:
		return false
	}
	return true
}

// pick is a readable rune of a character class (pairs of lo, hi): a
// letter or digit when the class has one, else its first rune.
func pick(ranges []rune) rune {
	for _, want := range []rune{'a', 'x', '0', '1', '-', '/'} {
		for i := 0; i+1 < len(ranges); i += 2 {
			if ranges[i] <= want && want <= ranges[i+1] {
				return want
			}
		}
	}
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1] && r < ranges[i]+128; r++ {
			if r > ' ' && r < 0x7f {
				return r
			}
		}
	}
	return ranges[0]
}
