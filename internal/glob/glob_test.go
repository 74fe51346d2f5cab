package glob

import "testing"

func TestMatch(t *testing.T) {
	cases := []struct {
		pat, s string
		want   bool
	}{
		{"support", "support", true}, {"support", "supports", false},
		{"traceloop.association.properties.*", "traceloop.association.properties.user_id", true},
		{"traceloop.association.properties.*", "traceloop.workflow.name", false},
		{"*-copilot", "support-copilot", true}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "acb", false},
		{"ab*ba", "aba", false}, {"*", "", true}, {"a/*", "a/b/c", true},
		// moved from the attribution rules' own matcher
		{"a*", "abc", true}, {"a*", "ba", false}, {"*c", "abc", true}, {"a*c", "ac", true},
		{"a*b*c", "aXbYc", true}, {"a*b*c", "aXcYb", false},
		{"exact", "exact", true}, {"exact", "exactly", false}, {"", "", true}, {"", "x", false},
	}
	for _, c := range cases {
		if got := Compile(c.pat).Match(c.s); got != c.want {
			t.Errorf("%q ~ %q = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
	if !Compile("x").IsExact() || Compile("x*").IsExact() {
		t.Error("IsExact")
	}
}
