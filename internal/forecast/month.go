package forecast

import (
	"errors"
	"fmt"
	"time"
)

// Month is a calendar month of the plan year (1..12), cut in the plan's time zone.
type Month int

// Label is "2006-01" for the plan year.
func (m Month) Label(year int) string { return fmt.Sprintf("%04d-%02d", year, int(m)) }

// Quarter is 1..4.
func (m Month) Quarter() int { return (int(m)-1)/3 + 1 }

// ParseMonth reads "YYYY-MM".
func ParseMonth(s string) (year int, m Month, err error) {
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return 0, 0, fmt.Errorf("%q is not a month (YYYY-MM)", s)
	}
	return t.Year(), Month(t.Month()), nil
}

// planMonth parses a month key and checks it is in the plan year.
func (p *Plan) planMonth(s string) (Month, error) {
	y, m, err := ParseMonth(s)
	if err != nil {
		return 0, err
	}
	if y != p.Year {
		return 0, fmt.Errorf("%s is outside the plan year %d", s, p.Year)
	}
	return m, nil
}

// Location is the plan's time zone (UTC if unloadable; Validate reports that).
func (p *Plan) Location() *time.Location {
	l, err := time.LoadLocation(p.TimeZone)
	if err != nil {
		return time.UTC
	}
	return l
}

// MonthStart is the first instant of month m of the plan year in the plan's zone.
func (p *Plan) MonthStart(m Month) time.Time {
	return time.Date(p.Year, time.Month(m), 1, 0, 0, 0, 0, p.Location())
}

// stepValue returns the value set by the latest listed month <= m (a step
// curve), and false before the first listed month.
func stepValue[V any](p *Plan, byMonth map[string]V, m Month) (V, bool) {
	var best V
	bestM, found := Month(0), false
	for k, v := range byMonth {
		km, err := p.planMonth(k)
		if err != nil || km > m {
			continue
		}
		if !found || km > bestM {
			best, bestM, found = v, km, true
		}
	}
	return best, found
}

func errorsJoin(errs []error) error { return errors.Join(errs...) }
