package chx_test

import (
	"reflect"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/chx"
)

func TestSplitStatements(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []string
	}{
		{"plain", "SELECT 1; SELECT 2;", []string{"SELECT 1", "SELECT 2"}},
		{"no final semicolon", "SELECT 1;\nSELECT 2\n", []string{"SELECT 1", "SELECT 2"}},
		{"empty statements", ";;\n ; SELECT 1;;", []string{"SELECT 1"}},
		{"semicolon in a string", "SELECT 'a;b'; SELECT 2", []string{"SELECT 'a;b'", "SELECT 2"}},
		{"escaped quote", `SELECT 'it\'s; here'; SELECT 2`, []string{`SELECT 'it\'s; here'`, "SELECT 2"}},
		{"doubled quote", "SELECT 'it''s; here'; SELECT 2", []string{"SELECT 'it''s; here'", "SELECT 2"}},
		{"quoted identifiers", "SELECT 1 AS \"a;b\", 2 AS `c;d`; SELECT 3", []string{"SELECT 1 AS \"a;b\", 2 AS `c;d`", "SELECT 3"}},
		{"line comment", "-- one; two\nSELECT 1; -- three; four\nSELECT 2", []string{"SELECT 1", "SELECT 2"}},
		{"hash comment", "# one; two\nSELECT 1", []string{"SELECT 1"}},
		{"block comment", "SELECT /* a; b */ 1; /* only a comment; */", []string{"SELECT   1"}},
		{"comment marks in a string", "SELECT '-- not; a comment', '/* nor; this */'; SELECT 2", []string{"SELECT '-- not; a comment', '/* nor; this */'", "SELECT 2"}},
		{"unclosed string", "SELECT 'a;b", []string{"SELECT 'a;b"}},
		{"unclosed comment", "SELECT 1 /* a; b", []string{"SELECT 1"}},
		{"only comments", "-- nothing\n/* here */", nil},
	} {
		if got := chx.SplitStatements(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: SplitStatements(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}
