package limits

import (
	"math"
	"strings"
	"testing"
)

func TestAddTokensNeverWraps(t *testing.T) {
	for _, c := range []struct {
		a, b, sum int64
		ok        bool
	}{
		{1, 2, 3, true},
		{math.MaxInt64, 0, math.MaxInt64, true},
		{math.MaxInt64, 1, 0, false},
		{math.MaxInt64, math.MaxInt64, 0, false}, // wraps to -2 in plain int64
		{-1, 5, 0, false},
	} {
		if sum, ok := AddTokens(c.a, c.b); sum != c.sum || ok != c.ok {
			t.Errorf("AddTokens(%d, %d) = %d, %v; want %d, %v", c.a, c.b, sum, ok, c.sum, c.ok)
		}
	}
}

func TestDefaultsValidateAndAreDocumented(t *testing.T) {
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	// The figures README and docs/ingest.md state.
	if d.MaxDepth != 32 || d.MaxStringBytes != 1024 || d.MaxAttributes != 64 || d.MaxTokens != 1e9 || d.MaxRecordBytes != 256<<10 || d.MemoryLimit != 0 {
		t.Errorf("defaults %+v", d)
	}
	e := &Error{Field: "body", Breach: BreachDepth, Limit: 32, Detail: "nesting deeper than 32 levels at byte 32"}
	if got := e.Error(); got != "body: exceeds limits.max_depth (32): nesting deeper than 32 levels at byte 32" {
		t.Errorf("error text %q", got)
	}
	bad := Limits{MaxDepth: 5000, MaxStringBytes: 1, MaxTokens: -1, MaxRecordBytes: 1 << 30, MemoryLimit: -1, MaxAttributes: -1}
	err := bad.Validate()
	for _, f := range []string{"max_depth", "max_string_bytes", "max_tokens", "max_record_bytes", "memory_limit", "max_attributes"} {
		if err == nil || !strings.Contains(err.Error(), f+":") {
			t.Errorf("no problem for %s in %v", f, err)
		}
	}
}
