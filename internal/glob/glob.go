// Package glob matches names against an exact value or a pattern whose '*'
// stands for any run of characters (slashes and dots included, unlike
// path.Match), as attribution rules and the collector's kept attribute names
// are written.
package glob

import "strings"

// Pattern is a compiled exact name or glob.
type Pattern struct {
	exact string
	parts []string // split on '*' when the pattern has one
}

// Compile reads s; without a '*' it matches only itself.
func Compile(s string) Pattern {
	if !strings.Contains(s, "*") {
		return Pattern{exact: s}
	}
	return Pattern{parts: strings.Split(s, "*")}
}

// IsExact reports whether the pattern has no '*'.
func (p Pattern) IsExact() bool { return p.parts == nil }

// Match reports whether s matches.
func (p Pattern) Match(s string) bool {
	if p.parts == nil {
		return s == p.exact
	}
	// parts[0] is a prefix, parts[len-1] a suffix, the middle ones appear in order.
	first, last := p.parts[0], p.parts[len(p.parts)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, mid := range p.parts[1 : len(p.parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return true
}
