package export

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// The rows every format must reproduce exactly. 0.000000000001 is one unit
// of the 12th decimal place: a float round trip would not survive it next to
// 12345678.9.
const fixture = `
CREATE TABLE spend (workflow String, day Date, at DateTime('UTC'), calls UInt64, cost Decimal(38, 12))
ENGINE = MergeTree ORDER BY workflow`

// Literal rows, typed as the columns are.
const rowsSQL = `INSERT INTO spend
 SELECT 'legal-research', toDate('2026-11-01'), toDateTime('2026-11-01 00:00:00', 'UTC'), 3, toDecimal128('12345678.900000000001', 12)
 UNION ALL
 SELECT 'support', toDate('2026-11-30'), toDateTime('2026-11-30 15:59:59', 'UTC'), 7, toDecimal128('0.000000000001', 12)`

func setup(t *testing.T) (context.Context, func(format string) []byte) {
	conn, _ := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	for _, q := range []string{fixture, rowsSQL} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return ctx, func(format string) []byte {
		f, err := os.Create(filepath.Join(t.TempDir(), "out."+format))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		n, err := Write(ctx, conn, "SELECT workflow, day, at, calls, cost FROM spend ORDER BY workflow", format, f)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("%s: wrote %d rows, want 2", format, n)
		}
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func checkTable(t *testing.T, rec arrow.Record) {
	t.Helper()
	if rec.NumRows() != 2 {
		t.Fatalf("rows %d", rec.NumRows())
	}
	dt, ok := rec.Schema().Field(4).Type.(*arrow.Decimal128Type)
	if !ok || dt.Precision != 38 || dt.Scale != 12 {
		t.Fatalf("cost column type %v, want decimal128(38,12)", rec.Schema().Field(4).Type)
	}
	costs := rec.Column(4).(*array.Decimal128)
	// Unscaled integers at scale 12, written out by hand.
	want := []string{"12345678900000000001", "1"}
	for i, w := range want {
		if got := costs.Value(i).BigInt().String(); got != w {
			t.Errorf("row %d cost unscaled %s, want %s", i, got, w)
		}
	}
	if got := rec.Column(0).(*array.String).Value(1); got != "support" {
		t.Errorf("workflow %q", got)
	}
	if got := rec.Column(3).(*array.Uint64).Value(1); got != 7 {
		t.Errorf("calls %d", got)
	}
	// 2026-11-30 15:59:59 UTC = 1796054399 s since the epoch.
	if got := rec.Column(2).(*array.Timestamp).Value(1); int64(got) != 1796054399000 {
		t.Errorf("at %d ms", got)
	}
	// 2026-11-01 is day 20758 since 1970-01-01.
	if got := rec.Column(1).(*array.Date32).Value(0); int32(got) != 20758 {
		t.Errorf("day %d", got)
	}
}

func TestParquetKeepsDecimalsExact(t *testing.T) {
	_, export := setup(t)
	b := export(FormatParquet)
	rdr, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 0)
	defer tr.Release()
	if !tr.Next() {
		t.Fatal("empty table")
	}
	checkTable(t, tr.Record())
}

func TestArrowIPCFile(t *testing.T) {
	_, export := setup(t)
	b := export(FormatArrow)
	r, err := ipc.NewFileReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.Record(0)
	if err != nil {
		t.Fatal(err)
	}
	checkTable(t, rec)
}

func TestCSV(t *testing.T) {
	_, export := setup(t)
	got := string(export(FormatCSV))
	want := "workflow,day,at,calls,cost\n" +
		"legal-research,2026-11-01,2026-11-01T00:00:00.000Z,3,12345678.900000000001\n" +
		"support,2026-11-30,2026-11-30T15:59:59.000Z,7,0.000000000001\n"
	if got != want {
		t.Fatalf("csv:\n%s\nwant:\n%s", got, want)
	}
}

func TestToDecimal128RefusesToRound(t *testing.T) {
	if _, err := toDecimal128(decimal.RequireFromString("0.0000000000001"), 12); err == nil ||
		!strings.Contains(err.Error(), "decimal places") {
		t.Fatalf("13 places at scale 12 must be refused, got %v", err)
	}
	n, err := toDecimal128(decimal.RequireFromString("-2.5"), 12)
	if err != nil || n.BigInt().String() != "-2500000000000" {
		t.Fatalf("-2.5 at scale 12: %v %v", n.BigInt(), err)
	}
}

// NULL ("not defined", e.g. cost per outcome without outcomes) stays NULL:
// an empty CSV field and an Arrow/Parquet null, never 0; narrow integer
// columns (UInt8 flags) export as their values.
func TestNullableAndNarrowColumns(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	q := "SELECT * FROM (SELECT 'a' AS w, toUInt8(1) AS flag, toInt16(-3) AS n, toNullable(toDecimal128('0.4', 12)) AS cpo" +
		" UNION ALL SELECT 'b', toUInt8(0), toInt16(5), CAST(NULL AS Nullable(Decimal(38, 12)))) ORDER BY w"
	var csv bytes.Buffer
	if _, err := Write(ctx, conn, q, FormatCSV, &csv); err != nil {
		t.Fatal(err)
	}
	if want := "w,flag,n,cpo\na,1,-3,0.400000000000\nb,0,5,\n"; csv.String() != want {
		t.Fatalf("csv:\n%s\nwant:\n%s", csv.String(), want)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "n.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(ctx, conn, q, FormatParquet, f); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.Name())
	rdr, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 0)
	defer tr.Release()
	tr.Next()
	cpo := tr.Record().Column(3)
	if cpo.IsNull(0) || !cpo.IsNull(1) {
		t.Fatalf("nulls %v %v", cpo.IsNull(0), cpo.IsNull(1))
	}
	if got := tr.Record().Column(1).(*array.Uint64).Value(0); got != 1 {
		t.Errorf("flag %d", got)
	}
}
