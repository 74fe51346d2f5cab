package chx_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// MigrateForTest applies every migration to a fresh database and returns
// the connection and config pointing at it.
func migrated(t *testing.T) (driver.Conn, chx.Config) {
	t.Helper()
	conn, db := testenv.ClickHouse(t)
	cfg := chx.Config{Addr: testenv.ClickHouseAddr(t), Database: db}
	cfg.ApplyDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := chx.Migrate(ctx, conn, cfg); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return conn, cfg
}

func TestMigrateTwice(t *testing.T) {
	conn, cfg := migrated(t)
	ctx := context.Background()
	migs, err := chx.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) < 3 {
		t.Fatalf("only %d migrations embedded", len(migs))
	}
	res, err := chx.Migrate(ctx, conn, cfg)
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if len(res.Applied) != 0 || len(res.Already) != len(migs) || len(res.Changed) != 0 {
		t.Fatalf("second run: applied %v, already %v, changed %v; want nothing applied, all %d already", res.Applied, res.Already, res.Changed, len(migs))
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+cfg.Database+".schema_migrations FINAL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(migs)) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(migs))
	}
	// Every table the sink and the views rely on exists.
	for _, table := range []string{"priced_usage", "outcomes", "dlq", "alerts", "sink_offsets", "usage_daily", "usage_hourly", "usage_minute", "outcomes_daily", "budgets", "forecasts", "tenants", "tenant_months", "price_catalogue"} {
		var c uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", cfg.Database, table).Scan(&c); err != nil {
			t.Fatal(err)
		}
		if c != 1 {
			t.Errorf("table %s missing after migrate", table)
		}
	}
}

func TestClusterize(t *testing.T) {
	m := chx.Migration{SQL: "CREATE TABLE IF NOT EXISTS {{db}}.x\n(a Int8)\nENGINE = SummingMergeTree()\nORDER BY a;\n"}
	got := m.Statements("tm", "prod")
	want := "CREATE TABLE IF NOT EXISTS tm.x ON CLUSTER prod\n(a Int8)\nENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/tm/x', '{replica}')\nORDER BY a"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	mv := chx.Migration{SQL: "-- a comment; with a semicolon\nCREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.mv TO {{db}}.x AS\nSELECT a FROM {{db}}.y;\n\nCREATE TABLE IF NOT EXISTS {{db}}.z (a Int8, s AggregateFunction(max, Int64)) ENGINE = ReplacingMergeTree(a) ORDER BY a;\n"}
	got = mv.Statements("tm", "prod")
	wantMV := []string{
		"CREATE MATERIALIZED VIEW IF NOT EXISTS tm.mv ON CLUSTER prod TO tm.x AS\nSELECT a FROM tm.y",
		"CREATE TABLE IF NOT EXISTS tm.z ON CLUSTER prod (a Int8, s AggregateFunction(max, Int64)) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tm/z', '{replica}', a) ORDER BY a",
	}
	if len(got) != 2 || got[0] != wantMV[0] || got[1] != wantMV[1] {
		t.Fatalf("got %q\nwant %q", got, wantMV)
	}
	if got := (chx.Migration{SQL: "DROP TABLE IF EXISTS {{db}}.v;\n"}).Statements("tm", "prod"); len(got) != 1 || got[0] != "DROP TABLE IF EXISTS tm.v ON CLUSTER prod" {
		t.Fatalf("drop: %q", got)
	}
	if got := (chx.Migration{SQL: "ALTER TABLE {{db}}.x MODIFY SETTING non_replicated_deduplication_window = 10000;\n"}).Statements("tm", "prod"); len(got) != 1 || got[0] != "ALTER TABLE tm.x ON CLUSTER prod MODIFY SETTING non_replicated_deduplication_window = 10000" {
		t.Fatalf("alter: %q", got)
	}
	// Without a cluster the statements are only templated.
	if got := mv.Statements("tm", ""); len(got) != 2 || got[1] != "CREATE TABLE IF NOT EXISTS tm.z (a Int8, s AggregateFunction(max, Int64)) ENGINE = ReplacingMergeTree(a) ORDER BY a" {
		t.Fatalf("single server: %q", got)
	}
}

func TestCheckSupported(t *testing.T) {
	for _, c := range []struct {
		v  chx.Version
		ok bool
	}{
		{chx.Version{Major: 18, Minor: 16}, false},
		{chx.Version{Major: 24, Minor: 3}, false},
		{chx.Version{Major: 24, Minor: 8}, true},
		{chx.Version{Major: 24, Minor: 12}, true},
		{chx.Version{Major: 25, Minor: 1}, true},
		{chx.Version{Major: 26, Minor: 7}, true},
	} {
		err := chx.CheckSupported(c.v)
		if (err == nil) != c.ok {
			t.Errorf("CheckSupported(%s) = %v, want ok=%v", c.v, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), c.v.String()) {
			t.Errorf("CheckSupported(%s) = %q: does not name the version", c.v, err)
		}
	}
}
