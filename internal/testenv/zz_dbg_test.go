package testenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/shopspring/decimal"
)

func TestDbgExec(t *testing.T) {
	ctx := context.Background()
	c, err := clickhouse.Open(&clickhouse.Options{Addr: []string{"127.0.0.1:9000"}, Settings: clickhouse.Settings{"allow_experimental_low_cardinality_type": 1}})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Exec(ctx, "DROP TABLE IF EXISTS default.dbg")
	if err := c.Exec(ctx, "CREATE TABLE default.dbg (ts DateTime('UTC'), m LowCardinality(String), c Decimal(38,12), n UInt64) ENGINE=MergeTree() ORDER BY ts"); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 31, 23, 59, 58, 0, time.UTC)
	if err := c.Exec(ctx, "INSERT INTO default.dbg (ts, m, c, n) VALUES (?, ?, ?, ?), (?, ?, ?, ?)", ts, "a'b", decimal.RequireFromString("12345678901234567890.123456789012"), uint64(5), ts, "x", decimal.RequireFromString("0.000000000001"), uint64(7)); err != nil {
		t.Fatal(err)
	}
	var s decimal.Decimal
	var n uint64
	var m string
	if err := c.QueryRow(ctx, "SELECT sum(c), count(), any(m) FROM default.dbg WHERE m = 'a\\'b' OR m = 'x'").Scan(&s, &n, &m); err != nil {
		t.Fatal(err)
	}
	t.Log(s, n, m)
}
