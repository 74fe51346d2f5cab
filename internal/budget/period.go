package budget

import (
	"fmt"
	"time"
)

// period is one calendar month or quarter in a time zone: [Start, End).
type period struct {
	ID    string // 2026-11 or 2026-Q4
	Start time.Time
	End   time.Time
}

// periodOf returns the calendar period (month or quarter) that contains t in
// loc. Months and quarters are cut at local midnight of their first day, so
// 2026-11-30T23:59:59+08:00 is in 2026-11 and 2026-12-01T00:00:00+08:00 in 2026-12.
func periodOf(kind string, t time.Time, loc *time.Location) period {
	lt := t.In(loc)
	y, m := lt.Year(), lt.Month()
	if kind == PeriodQuarter {
		q := (int(m)-1)/3 + 1
		start := time.Date(y, time.Month((q-1)*3+1), 1, 0, 0, 0, 0, loc)
		return period{ID: fmt.Sprintf("%04d-Q%d", y, q), Start: start, End: start.AddDate(0, 3, 0)}
	}
	start := time.Date(y, m, 1, 0, 0, 0, 0, loc)
	return period{ID: fmt.Sprintf("%04d-%02d", y, int(m)), Start: start, End: start.AddDate(0, 1, 0)}
}
