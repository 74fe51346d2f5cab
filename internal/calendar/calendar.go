// Package calendar parses the reporting periods commands take
// (--period 2026-Q4) into instants in a tenant's time zone: calendar months,
// quarters and years, never 30-day windows (DESIGN invariant 7).
package calendar

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Period is [From, To) in a time zone, with the name it was given.
type Period struct {
	Name     string
	From, To time.Time
}

// Parse reads "2026" (a year), "2026-Q4" (a quarter), "2026-11" (a month),
// "2026-11-05" (a day) or "FROM..TO" (dates, TO exclusive), cut in loc.
func Parse(s string, loc *time.Location) (Period, error) {
	s = strings.TrimSpace(s)
	if loc == nil {
		loc = time.UTC
	}
	if a, b, ok := strings.Cut(s, ".."); ok {
		from, err1 := time.ParseInLocation(time.DateOnly, a, loc)
		to, err2 := time.ParseInLocation(time.DateOnly, b, loc)
		if err1 != nil || err2 != nil || !from.Before(to) {
			return Period{}, fmt.Errorf("period %q: want FROM..TO dates (YYYY-MM-DD), FROM before TO", s)
		}
		return Period{Name: s, From: from, To: to}, nil
	}
	if len(s) == 4 {
		y, err := strconv.Atoi(s)
		if err == nil && y > 1970 {
			from := time.Date(y, 1, 1, 0, 0, 0, 0, loc)
			return Period{Name: s, From: from, To: from.AddDate(1, 0, 0)}, nil
		}
	}
	if len(s) == 7 && (s[5] == 'Q' || s[5] == 'q') && s[4] == '-' {
		y, err := strconv.Atoi(s[:4])
		q := int(s[6] - '0')
		if err == nil && q >= 1 && q <= 4 {
			from := time.Date(y, time.Month(3*(q-1)+1), 1, 0, 0, 0, 0, loc)
			return Period{Name: s[:5] + "Q" + s[6:], From: from, To: from.AddDate(0, 3, 0)}, nil
		}
	}
	if t, err := time.ParseInLocation("2006-01", s, loc); err == nil && len(s) == 7 {
		return Period{Name: s, From: t, To: t.AddDate(0, 1, 0)}, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return Period{Name: s, From: t, To: t.AddDate(0, 0, 1)}, nil
	}
	return Period{}, fmt.Errorf("period %q: want YYYY, YYYY-Qn, YYYY-MM, YYYY-MM-DD or FROM..TO", s)
}

// Previous is the period of the same length just before p (the previous
// month, quarter or year for calendar periods).
func (p Period) Previous() Period {
	y, m, d := p.From.Date()
	y2, m2, d2 := p.To.Date()
	months := (y2-y)*12 + int(m2-m)
	if d == 1 && d2 == 1 && months > 0 {
		from := p.From.AddDate(0, -months, 0)
		return Period{Name: "previous " + p.Name, From: from, To: p.From}
	}
	dur := p.To.Sub(p.From)
	return Period{Name: "previous " + p.Name, From: p.From.Add(-dur), To: p.From}
}
