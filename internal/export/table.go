package export

import (
	"errors"
	"fmt"
	"io"
	"reflect"
)

// Table is a result computed in Go (a chargeback statement, a comparison
// sheet) written with the same column mapping as a query result, so a
// Decimal(38, 12) column is an exact Arrow decimal128 here too.
type Table struct {
	Columns []TableColumn
	Rows    [][]any // each value's Go type is the column's scan type (string, int64, uint64, time.Time, decimal.Decimal)
}

// TableColumn names a column and its ClickHouse type (String, Int64,
// UInt64, Date, DateTime, Decimal(38, 12), …).
type TableColumn struct {
	Name string
	Type string
}

// WriteTable writes t to w in format (parquet, arrow or csv).
func WriteTable(t *Table, format string, w io.Writer) (int64, error) {
	switch format {
	case FormatParquet, FormatArrow, FormatCSV:
	default:
		return 0, fmt.Errorf("format %q is not parquet, arrow or csv", format)
	}
	if len(t.Columns) == 0 {
		return 0, errors.New("table has no columns")
	}
	cols := make([]column, len(t.Columns))
	for i, c := range t.Columns {
		col, err := columnFor(c.Name, c.Type)
		if err != nil {
			return 0, err
		}
		cols[i] = col
	}
	for r, row := range t.Rows {
		if len(row) != len(cols) {
			return 0, fmt.Errorf("row %d has %d values, want %d", r, len(row), len(cols))
		}
	}
	return writeRows(&tableRows{t: t, i: -1}, cols, format, w)
}

type tableRows struct {
	t *Table
	i int
}

func (r *tableRows) Next() bool { r.i++; return r.i < len(r.t.Rows) }
func (r *tableRows) Err() error { return nil }

// Scan stores each value into the matching destination pointer.
func (r *tableRows) Scan(dest ...any) error {
	row := r.t.Rows[r.i]
	for i, d := range dest {
		dv := reflect.ValueOf(d).Elem()
		v := reflect.ValueOf(row[i])
		if !v.IsValid() || !v.Type().AssignableTo(dv.Type()) {
			return fmt.Errorf("row %d column %s: %T is not %s", r.i, r.t.Columns[i].Name, row[i], dv.Type())
		}
		dv.Set(v)
	}
	return nil
}
