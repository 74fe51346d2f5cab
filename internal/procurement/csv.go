package procurement

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Record is one CSV row by column name, with typed getters that collect
// problems instead of failing on the first.
type Record struct {
	Line int
	m    map[string]string
	errs *[]error
}

// Str is the column's text.
func (r Record) Str(c string) string { return r.m[c] }

func (r Record) bad(c, v, want string) {
	*r.errs = append(*r.errs, fmt.Errorf("line %d: %s %q is not %s", r.Line, c, v, want))
}

// Int is a non-negative integer column.
func (r Record) Int(c string) int64 {
	v, err := strconv.ParseInt(strings.TrimSpace(r.m[c]), 10, 64)
	if err != nil || v < 0 {
		r.bad(c, r.m[c], "a non-negative integer")
	}
	return v
}

// Dec is an exact decimal column (empty = 0).
func (r Record) Dec(c string) decimal.Decimal {
	s := strings.TrimSpace(r.m[c])
	if s == "" {
		return decimal.Zero
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		r.bad(c, s, "a decimal")
	}
	return d
}

// Time is an RFC 3339 column.
func (r Record) Time(c string) time.Time {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(r.m[c]))
	if err != nil {
		r.bad(c, r.m[c], "an RFC 3339 instant")
	}
	return t.UTC()
}

// ReadCSV reads a CSV with a header holding at least columns (any order,
// extra columns ignored, `#` lines are comments) and calls row for each
// record. Every problem is reported with its line.
func ReadCSV(rd io.Reader, name string, columns []string, row func(Record)) error {
	cr := csv.NewReader(rd)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return fmt.Errorf("%s: header: %w", name, err)
	}
	idx := map[string]int{}
	for i, h := range head {
		idx[strings.TrimSpace(h)] = i
	}
	var errs []error
	for _, c := range columns {
		if _, ok := idx[c]; !ok {
			errs = append(errs, fmt.Errorf("%s: column %s missing", name, c))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil { // a *csv.ParseError names its line; FieldPos is only valid after a good record
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			break
		}
		line, _ := cr.FieldPos(0)
		m := map[string]string{}
		for c, i := range idx {
			if i < len(rec) {
				m[c] = rec[i]
			}
		}
		var rowErrs []error
		row(Record{Line: line, m: m, errs: &rowErrs})
		for _, e := range rowErrs {
			errs = append(errs, fmt.Errorf("%s: %w", name, e))
		}
	}
	return errors.Join(errs...)
}
