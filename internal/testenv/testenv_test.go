package testenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// The project's ClickHouse subset (DESIGN.md): Decimal(38,12) money,
// DateTime('UTC'), LowCardinality(String), written with a native batch insert
// and read back exactly, over the native protocol and, on servers that
// clickhouse-go's HTTP transport supports, over HTTP.
func TestClickHouseRoundTrip(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	t.Run("native", func(t *testing.T) { roundTrip(t, conn, db) })
	t.Run("http", func(t *testing.T) {
		if v, err := conn.ServerVersion(); err == nil && v.Version.Major < 19 {
			// clickhouse-go v2.51 over HTTP sends client_protocol_version in the
			// URL and runs SELECT displayName(), revision() as a preflight; 18.x
			// knows neither ("Unknown setting client_protocol_version").
			t.Skipf("clickhouse-go's HTTP protocol does not support ClickHouse %s", v.Version)
		}
		opts := testenv.ClickHouseOptions(t, db)
		opts.Protocol = clickhouse.HTTP
		opts.Addr = []string{testenv.ClickHouseHTTPAddr(t)}
		hc, err := clickhouse.Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer hc.Close()
		roundTrip(t, hc, db)
	})
}

func roundTrip(t *testing.T, conn driver.Conn, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	table := db + ".rt_" + t.Name()[len("TestClickHouseRoundTrip/"):]

	if err := conn.Exec(ctx, `CREATE TABLE `+table+` (
		event_time DateTime('UTC'),
		model      LowCardinality(String),
		cost       Decimal(38, 12),
		tokens     UInt64
	) ENGINE = MergeTree() PARTITION BY toYYYYMM(event_time) ORDER BY (model, event_time)`); err != nil {
		t.Fatalf("create table: %v", err)
	}

	ts := time.Date(2026, 1, 31, 23, 59, 58, 0, time.UTC)
	rows := []struct {
		model  string
		cost   string
		tokens uint64
	}{
		{"gpt-4.1", "0.000002500000", 1},
		{"claude-sonnet-4", "12345678901234567890.123456789012", 1_000_000},
		{"gpt-4.1", "0.000000000001", 3},
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" (event_time, model, cost, tokens)")
	if err != nil {
		t.Fatalf("prepare batch: %v", err)
	}
	for _, r := range rows {
		if err := batch.Append(ts, r.model, decimal.RequireFromString(r.cost), r.tokens); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send: %v", err)
	}

	var (
		total  decimal.Decimal
		n      uint64
		tokens uint64
		maxTS  time.Time
	)
	if err := conn.QueryRow(ctx, "SELECT sum(cost), count(), sum(tokens), max(event_time) FROM "+table+" WHERE model IN ('gpt-4.1', 'claude-sonnet-4')").
		Scan(&total, &n, &tokens, &maxTS); err != nil {
		t.Fatalf("select: %v", err)
	}
	want := decimal.RequireFromString("12345678901234567890.123459289013")
	if !total.Equal(want) || n != 3 || tokens != 1_000_004 || !maxTS.Equal(ts) {
		t.Fatalf("got sum=%s count=%d tokens=%d max=%s; want sum=%s count=3 tokens=1000004 max=%s", total, n, tokens, maxTS, want, ts)
	}

	var model string
	var cost decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT model, cost FROM "+table+" ORDER BY cost LIMIT 1").Scan(&model, &cost); err != nil {
		t.Fatalf("select row: %v", err)
	}
	if model != "gpt-4.1" || !cost.Equal(decimal.RequireFromString("0.000000000001")) {
		t.Fatalf("got %s %s", model, cost)
	}
}

func TestNames(t *testing.T) {
	db := testenv.DatabaseName(t)
	if len(db) < len("t_testnames_")+8 || db[:12] != "t_testnames_" {
		t.Fatalf("DatabaseName = %q", db)
	}
	if a, b := testenv.TopicPrefix(t), testenv.TopicPrefix(t); a == b {
		t.Fatalf("TopicPrefix not unique: %q", a)
	}
}
