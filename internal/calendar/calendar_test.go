package calendar

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	hk, err := time.LoadLocation("Asia/Hong_Kong")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ in, from, to string }{
		{"2026-Q4", "2026-10-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00"},
		{"2026-q1", "2026-01-01T00:00:00+08:00", "2026-04-01T00:00:00+08:00"},
		{"2026-11", "2026-11-01T00:00:00+08:00", "2026-12-01T00:00:00+08:00"},
		{"2026", "2026-01-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00"},
		{"2026-02-28", "2026-02-28T00:00:00+08:00", "2026-03-01T00:00:00+08:00"},
		{"2026-11-05..2026-11-20", "2026-11-05T00:00:00+08:00", "2026-11-20T00:00:00+08:00"},
	}
	for _, c := range cases {
		p, err := Parse(c.in, hk)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if p.From.Format(time.RFC3339) != c.from || p.To.Format(time.RFC3339) != c.to {
			t.Fatalf("%s: %s..%s", c.in, p.From.Format(time.RFC3339), p.To.Format(time.RFC3339))
		}
	}
	for _, bad := range []string{"", "2026-Q5", "2026-13", "Q4", "2026-11-20..2026-11-05", "yesterday"} {
		if _, err := Parse(bad, hk); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestPrevious(t *testing.T) {
	p, _ := Parse("2026-Q1", time.UTC)
	prev := p.Previous()
	if prev.From.Format(time.DateOnly) != "2025-10-01" || prev.To.Format(time.DateOnly) != "2026-01-01" {
		t.Fatalf("%v", prev)
	}
	p, _ = Parse("2026-03", time.UTC)
	if prev := p.Previous(); prev.From.Format(time.DateOnly) != "2026-02-01" {
		t.Fatalf("%v", prev)
	}
}
