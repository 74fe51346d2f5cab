// Package export writes the result of a ClickHouse query as a columnar file:
// Apache Parquet or Arrow IPC (through apache/arrow/go), or CSV. It is how
// finance and data teams take priced usage and the CFO views into a
// notebook, a warehouse or a spreadsheet without losing exactness: ClickHouse
// Decimal(P,S) becomes Arrow decimal128(P,S), never a float.
package export

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/big"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/shopspring/decimal"
)

// Formats accepted by Write.
const (
	FormatParquet = "parquet"
	FormatArrow   = "arrow" // Arrow IPC file format (Feather v2); IPC stream format when w cannot seek
	FormatCSV     = "csv"
)

// batchRows is how many rows go into one Arrow record batch / Parquet row group chunk.
const batchRows = 64 * 1024

// column maps one ClickHouse result column to an Arrow field and knows how
// to scan a value and append it.
type column struct {
	field arrow.Field
	scan  func() any                         // new scan destination
	add   func(b array.Builder, v any) error // append a scanned value
	text  func(v any) string                 // CSV form
}

var decimalType = regexp.MustCompile(`^Decimal(?:\((\d+),\s*(\d+)\)|(32|64|128)\((\d+)\))$`)

func unwrap(t string) (string, bool) {
	nullable := false
	for {
		switch {
		case strings.HasPrefix(t, "LowCardinality(") && strings.HasSuffix(t, ")"):
			t = t[len("LowCardinality(") : len(t)-1]
		case strings.HasPrefix(t, "Nullable(") && strings.HasSuffix(t, ")"):
			t, nullable = t[len("Nullable("):len(t)-1], true
		default:
			return t, nullable
		}
	}
}

func columnFor(name, chType string) (column, error) {
	t, nullable := unwrap(chType)
	c, err := plainColumnFor(name, t, chType)
	if err != nil || !nullable {
		return c, err
	}
	return nullableOf(c), nil
}

// nullableOf wraps a column for a Nullable ClickHouse type: NULL becomes an
// Arrow/Parquet null and an empty CSV field ("not defined" stays not
// defined; it is never written as 0).
func nullableOf(inner column) column {
	c := inner
	c.field.Nullable = true
	c.scan = func() any { return reflect.New(reflect.TypeOf(inner.scan())).Interface() } // **T
	deref := func(v any) (any, bool) {
		p := reflect.ValueOf(v).Elem()
		if p.IsNil() {
			return nil, false
		}
		return p.Interface(), true
	}
	c.add = func(b array.Builder, v any) error {
		x, ok := deref(v)
		if !ok {
			b.AppendNull()
			return nil
		}
		return inner.add(b, x)
	}
	c.text = func(v any) string {
		x, ok := deref(v)
		if !ok {
			return ""
		}
		return inner.text(x)
	}
	return c
}

func plainColumnFor(name, t, chType string) (column, error) {
	f := arrow.Field{Name: name}
	switch {
	case t == "String" || strings.HasPrefix(t, "FixedString") || strings.HasPrefix(t, "Enum"):
		f.Type = arrow.BinaryTypes.String
		return column{field: f,
			scan: func() any { return new(string) },
			add:  func(b array.Builder, v any) error { b.(*array.StringBuilder).Append(*v.(*string)); return nil },
			text: func(v any) string { return *v.(*string) }}, nil
	case t == "UInt8" || t == "UInt16" || t == "UInt32" || t == "UInt64":
		// Scanned at the column's own width (the driver converts no integer
		// widths), widened to 64 bits for Arrow.
		f.Type = arrow.PrimitiveTypes.Uint64
		newv := map[string]func() any{"UInt8": func() any { return new(uint8) }, "UInt16": func() any { return new(uint16) },
			"UInt32": func() any { return new(uint32) }, "UInt64": func() any { return new(uint64) }}[t]
		u := func(v any) uint64 { return reflect.ValueOf(v).Elem().Uint() }
		return column{field: f,
			scan: newv,
			add:  func(b array.Builder, v any) error { b.(*array.Uint64Builder).Append(u(v)); return nil },
			text: func(v any) string { return strconv.FormatUint(u(v), 10) }}, nil
	case t == "Int8" || t == "Int16" || t == "Int32" || t == "Int64":
		f.Type = arrow.PrimitiveTypes.Int64
		newv := map[string]func() any{"Int8": func() any { return new(int8) }, "Int16": func() any { return new(int16) },
			"Int32": func() any { return new(int32) }, "Int64": func() any { return new(int64) }}[t]
		n := func(v any) int64 { return reflect.ValueOf(v).Elem().Int() }
		return column{field: f,
			scan: newv,
			add:  func(b array.Builder, v any) error { b.(*array.Int64Builder).Append(n(v)); return nil },
			text: func(v any) string { return strconv.FormatInt(n(v), 10) }}, nil
	case t == "Float32" || t == "Float64":
		// Ratios such as ROI percentages; money columns are Decimal.
		f.Type = arrow.PrimitiveTypes.Float64
		if t == "Float32" {
			return column{field: f,
				scan: func() any { return new(float32) },
				add: func(b array.Builder, v any) error {
					b.(*array.Float64Builder).Append(float64(*v.(*float32)))
					return nil
				},
				text: func(v any) string { return strconv.FormatFloat(float64(*v.(*float32)), 'g', -1, 32) }}, nil
		}
		return column{field: f,
			scan: func() any { return new(float64) },
			add:  func(b array.Builder, v any) error { b.(*array.Float64Builder).Append(*v.(*float64)); return nil },
			text: func(v any) string { return strconv.FormatFloat(*v.(*float64), 'g', -1, 64) }}, nil
	case t == "Date":
		f.Type = arrow.FixedWidthTypes.Date32
		return column{field: f,
			scan: func() any { return new(time.Time) },
			add: func(b array.Builder, v any) error {
				b.(*array.Date32Builder).Append(arrow.Date32FromTime(*v.(*time.Time)))
				return nil
			},
			text: func(v any) string { return v.(*time.Time).Format("2006-01-02") }}, nil
	case strings.HasPrefix(t, "DateTime"):
		f.Type = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
		return column{field: f,
			scan: func() any { return new(time.Time) },
			add: func(b array.Builder, v any) error {
				b.(*array.TimestampBuilder).Append(arrow.Timestamp(v.(*time.Time).UnixMilli()))
				return nil
			},
			text: func(v any) string { return v.(*time.Time).UTC().Format("2006-01-02T15:04:05.000Z") }}, nil
	}
	if m := decimalType.FindStringSubmatch(t); m != nil {
		p, s := m[1], m[2]
		if p == "" {
			p, s = map[string]string{"32": "9", "64": "18", "128": "38"}[m[3]], m[4]
		}
		prec, _ := strconv.Atoi(p)
		scale, _ := strconv.Atoi(s)
		if prec > 38 {
			return column{}, fmt.Errorf("column %s: %s is wider than Arrow decimal128", name, t)
		}
		dt := &arrow.Decimal128Type{Precision: int32(prec), Scale: int32(scale)}
		f.Type = dt
		return column{field: f,
			scan: func() any { return new(decimal.Decimal) },
			add: func(b array.Builder, v any) error {
				n, err := toDecimal128(*v.(*decimal.Decimal), int32(scale))
				if err != nil {
					return fmt.Errorf("column %s: %w", name, err)
				}
				b.(*array.Decimal128Builder).Append(n)
				return nil
			},
			text: func(v any) string { return v.(*decimal.Decimal).StringFixed(int32(scale)) }}, nil
	}
	return column{}, fmt.Errorf("column %s: ClickHouse type %s is not supported for export", name, chType)
}

// toDecimal128 gives the exact unscaled integer of d at scale: d × 10^scale.
// A value with more fractional digits than scale cannot come from a
// ClickHouse Decimal(P,scale) column, so it is an error, not a rounding.
func toDecimal128(d decimal.Decimal, scale int32) (decimal128.Num, error) {
	shifted := d.Shift(scale)
	if !shifted.Equal(shifted.Truncate(0)) {
		return decimal128.Num{}, fmt.Errorf("%s has more than %d decimal places", d, scale)
	}
	bi := shifted.BigInt()
	if bi.BitLen() > 127 {
		return decimal128.Num{}, fmt.Errorf("%s overflows decimal128", d)
	}
	return decimal128.FromBigInt(new(big.Int).Set(bi)), nil
}

// Write runs query on conn and writes every row to w in format. It returns
// the number of rows written.
func Write(ctx context.Context, conn driver.Conn, query string, format string, w io.Writer) (int64, error) {
	switch format {
	case FormatParquet, FormatArrow, FormatCSV:
	default:
		return 0, fmt.Errorf("format %q is not parquet, arrow or csv", format)
	}
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	var cols []column
	for _, ct := range rows.ColumnTypes() {
		c, err := columnFor(ct.Name(), ct.DatabaseTypeName())
		if err != nil {
			return 0, err
		}
		cols = append(cols, c)
	}
	return writeRows(rows, cols, format, w)
}

// rowSource is what writing needs of a result: driver.Rows, or a Table.
type rowSource interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

func writeRows(rows rowSource, cols []column, format string, w io.Writer) (int64, error) {
	if len(cols) == 0 {
		return 0, errors.New("query returns no columns")
	}
	if format == FormatCSV {
		return writeCSV(rows, cols, w)
	}

	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = c.field
	}
	schema := arrow.NewSchema(fields, nil)
	var (
		writeRec func(arrow.Record) error
		closeW   func() error
	)
	if format == FormatParquet {
		props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
		fw, err := pqarrow.NewFileWriter(schema, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err != nil {
			return 0, fmt.Errorf("parquet writer: %w", err)
		}
		writeRec, closeW = fw.WriteBuffered, fw.Close
	} else {
		// The IPC file format needs to seek back for its footer; a pipe gets
		// the IPC stream format, which every Arrow reader also opens.
		if ws, ok := w.(io.WriteSeeker); ok && seekable(ws) {
			fw, err := ipc.NewFileWriter(ws, ipc.WithSchema(schema))
			if err != nil {
				return 0, fmt.Errorf("arrow writer: %w", err)
			}
			writeRec, closeW = fw.Write, fw.Close
		} else {
			sw := ipc.NewWriter(w, ipc.WithSchema(schema))
			writeRec, closeW = sw.Write, sw.Close
		}
	}

	bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer bld.Release()
	dest := make([]any, len(cols))
	var total, inBatch int64
	flush := func() error {
		if inBatch == 0 {
			return nil
		}
		rec := bld.NewRecord()
		defer rec.Release()
		inBatch = 0
		return writeRec(rec)
	}
	for rows.Next() {
		for i, c := range cols {
			dest[i] = c.scan()
		}
		if err := rows.Scan(dest...); err != nil {
			return total, fmt.Errorf("scan: %w", err)
		}
		for i, c := range cols {
			if err := c.add(bld.Field(i), dest[i]); err != nil {
				return total, err
			}
		}
		total++
		if inBatch++; inBatch == batchRows {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return total, fmt.Errorf("rows: %w", err)
	}
	if err := flush(); err != nil {
		return total, err
	}
	return total, closeW()
}

func seekable(ws io.WriteSeeker) bool {
	_, err := ws.Seek(0, io.SeekCurrent)
	return err == nil
}

func writeCSV(rows rowSource, cols []column, w io.Writer) (int64, error) {
	cw := csv.NewWriter(w)
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = c.field.Name
	}
	if err := cw.Write(header); err != nil {
		return 0, err
	}
	dest := make([]any, len(cols))
	rec := make([]string, len(cols))
	var total int64
	for rows.Next() {
		for i, c := range cols {
			dest[i] = c.scan()
		}
		if err := rows.Scan(dest...); err != nil {
			return total, fmt.Errorf("scan: %w", err)
		}
		for i, c := range cols {
			rec[i] = c.text(dest[i])
		}
		if err := cw.Write(rec); err != nil {
			return total, err
		}
		total++
	}
	if err := rows.Err(); err != nil {
		return total, err
	}
	cw.Flush()
	return total, cw.Error()
}
