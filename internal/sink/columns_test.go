package sink

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go"
	"github.com/shopspring/decimal"
	"google.golang.org/protobuf/proto"

	"github.com/tokenmeter/tokenmeter/internal/contract/pricedv1"
	"github.com/tokenmeter/tokenmeter/internal/money"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkInsertPricedClients decodes 20 000 priced.v1 records and inserts
// them into priced_usage (with its rollup views) as one block, three ways:
// clickhouse-go row by row (Append(row...)), clickhouse-go column by column
// (Column(i).Append(slice)), and ch-go's native columns (pricedBlock:
// decimals from the coefficient). Reports rows/s and this process's CPU per
// row (decode + client encode; the server's CPU is the same block either way).
func BenchmarkInsertPricedClients(b *testing.B) {
	conn, db := migrated(b)
	const batch = 20_000
	recs := make([][]byte, batch)
	for i := range recs {
		e := pricedEvent(i + 1)
		e.Model = fmt.Sprintf("model-%d", i%7)
		recs[i] = pricedValue(b, &e)
	}
	cols := append(append([]string{}, pricedTable.columns...), kafkaColumns...)
	insert := "INSERT INTO " + db + ".priced_usage (" + strings.Join(cols, ", ") + ")"
	ctx := context.Background()
	z := &zoner{}
	offset := int64(0)
	run := func(b *testing.B, once func() error) {
		cpu0, start := processCPU(), time.Now()
		for b.Loop() {
			if err := once(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "rows/s")
		b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N*batch), "client-cpu-ns/row")
	}
	b.Run("clickhouse-go/rows", func(b *testing.B) {
		run(b, func() error {
			bt, err := conn.PrepareBatch(ctx, insert)
			if err != nil {
				return err
			}
			for _, r := range recs {
				vals, _, err := decodePriced(z, r)
				if err != nil {
					return err
				}
				offset++
				if err := bt.Append(append(vals, "priced", int32(0), offset)...); err != nil {
					return err
				}
			}
			return bt.Send()
		})
	})
	b.Run("clickhouse-go/columns", func(b *testing.B) {
		run(b, func() error {
			bt, err := conn.PrepareBatch(ctx, insert)
			if err != nil {
				return err
			}
			colVals := make([][]any, len(cols))
			for _, r := range recs {
				vals, _, err := decodePriced(z, r)
				if err != nil {
					return err
				}
				offset++
				vals = append(vals, "priced", int32(0), offset)
				for i, v := range vals {
					colVals[i] = append(colVals[i], v)
				}
			}
			for i, vs := range colVals {
				if err := bt.Column(i).Append(typed(vs)); err != nil {
					return fmt.Errorf("%s: %w", cols[i], err)
				}
			}
			return bt.Send()
		})
	})
	b.Run("ch-go", func(b *testing.B) {
		cl, err := ch.Dial(ctx, ch.Options{Address: testenv.ClickHouseAddr(b), Database: db})
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		blk := newPricedBlock()
		var m pricedv1.PricedUsage
		run(b, func() error {
			blk.Reset()
			for _, r := range recs {
				if err := proto.Unmarshal(r, &m); err != nil {
					return err
				}
				offset++
				blk.append(&m, "priced", 0, offset)
			}
			return cl.Do(ctx, ch.Query{Body: "INSERT INTO " + db + ".priced_usage (" + strings.Join(cols, ", ") + ") VALUES", Input: blk.Input()})
		})
	})
}

// typed turns one column's values into the slice type clickhouse-go's
// Column.Append takes.
func typed(vs []any) any {
	switch vs[0].(type) {
	case string:
		return convert[string](vs)
	case uint64:
		return convert[uint64](vs)
	case uint16:
		return convert[uint16](vs)
	case int32:
		return convert[int32](vs)
	case int64:
		return convert[int64](vs)
	case time.Time:
		return convert[time.Time](vs)
	case decimal.Decimal:
		return convert[decimal.Decimal](vs)
	case []string:
		return convert[[]string](vs)
	}
	return vs
}

func convert[T any](vs []any) []T {
	out := make([]T, len(vs))
	for i, v := range vs {
		out[i] = v.(T)
	}
	return out
}

// The native block stores what the record says: amounts from the
// coefficient (0.000001 + 0.000002 + 0.000003 USD, × 7.8 in HKD = 0.0000468;
// a 10^-12 amount and a negative one survive exactly), the processor's
// local_date, and the provenance columns.
func TestPricedBlockInsertsWhatTheRecordSays(t *testing.T) {
	conn, db := migrated(t)
	ctx := context.Background()
	cl, err := ch.Dial(ctx, ch.Options{Address: testenv.ClickHouseAddr(t), Database: db})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	blk := newPricedBlock()
	for i := 1; i <= 3; i++ {
		e := pricedEvent(i)
		if i == 3 {
			e.CacheSavings = money.FromCoef(-1) // -10^-12
		}
		var m pricedv1.PricedUsage
		if err := proto.Unmarshal(pricedValue(t, &e), &m); err != nil {
			t.Fatal(err)
		}
		blk.append(&m, "priced", 2, int64(10+i))
	}
	cols := append(append([]string{}, pricedTable.columns...), kafkaColumns...)
	if err := cl.Do(ctx, ch.Query{Body: "INSERT INTO " + db + ".priced_usage (" + strings.Join(cols, ", ") + ") VALUES", Input: blk.Input()}); err != nil {
		t.Fatal(err)
	}
	var cost, billed, savings decimal.Decimal
	var dates string
	var maxOff int64
	if err := conn.QueryRow(ctx, "SELECT sum(effective_cost), sum(billed_effective_cost), sum(cache_savings), "+
		"arrayStringConcat(arraySort(groupUniqArray(toString(local_date))), ','), max(kafka_offset) FROM "+db+".priced_usage").
		Scan(&cost, &billed, &savings, &dates, &maxOff); err != nil {
		t.Fatal(err)
	}
	// pricedEvent(1..3) are at 14:00:07..21 UTC on 31 March: 22:00 in Hong Kong, still 31 March.
	if cost.String() != "0.000006" || billed.String() != "0.0000468" || savings.String() != "-0.000000000001" || dates != "2026-03-31" || maxOff != 13 {
		t.Errorf("stored cost %s billed %s savings %s dates %s max offset %d; want 0.000006 0.0000468 -0.000000000001 2026-03-31 13", cost, billed, savings, dates, maxOff)
	}
}
