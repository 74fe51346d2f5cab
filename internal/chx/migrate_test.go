package chx_test

import (
	"context"
	"errors"
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
	views, err := chx.Views()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) < 1 || len(views) < 10 {
		t.Fatalf("only %d migrations and %d views embedded", len(migs), len(views))
	}
	res, err := chx.Migrate(ctx, conn, cfg)
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if len(res.Applied) != 0 || len(res.Already) != len(migs) || len(res.Views) != 0 || len(res.Dropped) != 0 {
		t.Fatalf("second run: applied %v, already %v, views %v, dropped %v; want nothing done, all %d migrations already", res.Applied, res.Already, res.Views, res.Dropped, len(migs))
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+cfg.Database+".schema_migrations FINAL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(migs)) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(migs))
	}
	// Every table the sink and the views rely on exists, and every view.
	want := []string{"priced_usage", "outcomes", "dlq", "alerts", "sink_offsets", "usage_daily", "usage_hourly", "usage_minute", "outcomes_daily", "budgets", "forecasts", "tenants", "tenant_months", "price_catalogue"}
	for _, v := range views {
		want = append(want, v.Name)
	}
	for _, table := range want {
		var c uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", cfg.Database, table).Scan(&c); err != nil {
			t.Fatal(err)
		}
		if c != 1 {
			t.Errorf("table %s missing after migrate", table)
		}
	}
}

// The three usage rollups come from one definition: the same columns with
// the same types, but for the time bucket.
func TestRollupsShareOneDefinition(t *testing.T) {
	conn, cfg := migrated(t)
	cols := map[string]string{}
	for _, r := range chx.Rollups {
		got := rowsOf(t, conn, "SELECT name, type FROM system.columns WHERE database = '"+cfg.Database+"' AND table = '"+r.Table+"' AND name != '"+r.Bucket+"' ORDER BY position")
		var b strings.Builder
		for _, c := range got {
			b.WriteString(c[0] + " " + c[1] + "\n")
		}
		cols[r.Table] = b.String()
		if !strings.Contains(b.String(), "billed_effective_cost Decimal(38, 12)") {
			t.Errorf("%s lacks billed_effective_cost Decimal(38, 12):\n%s", r.Table, b.String())
		}
	}
	if cols["usage_minute"] != cols["usage_hourly"] || cols["usage_hourly"] != cols["usage_daily"] {
		t.Errorf("rollup columns differ:\n%v", cols)
	}
}

// A migration that changed after it was applied stops migrate.
func TestChangedMigrationIsAnError(t *testing.T) {
	conn, cfg := migrated(t)
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+cfg.Database+".schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(1), "001_baseline.sql", "0123456789abcdef", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	_, err = chx.Migrate(ctx, conn, cfg)
	if !errors.Is(err, chx.ErrSchemaChanged) || !strings.Contains(err.Error(), "001_baseline.sql") || !strings.Contains(err.Error(), "0123456789abcdef") {
		t.Fatalf("migrate over a changed migration: %v; want ErrSchemaChanged naming 001_baseline.sql and the recorded checksum", err)
	}
}

// A database made by the retired pre-baseline schema is refused with one
// error that says to recreate it.
func TestPreBaselineDatabaseIsRefused(t *testing.T) {
	conn, cfg := migrated(t)
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+cfg.Database+".schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(1), "001_core.sql", "0123456789abcdef", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	_, err = chx.Migrate(ctx, conn, cfg)
	if !errors.Is(err, chx.ErrSchemaChanged) || !strings.Contains(err.Error(), "recreate") || strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("migrate over a pre-baseline database: %v; want one ErrSchemaChanged line saying to recreate it", err)
	}
}

// A migration this binary does not know (applied by a newer one) stops migrate.
func TestUnknownAppliedMigrationIsAnError(t *testing.T) {
	conn, cfg := migrated(t)
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+cfg.Database+".schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(999), "999_future.sql", "0123456789abcdef", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	if _, err := chx.Migrate(ctx, conn, cfg); err == nil || !strings.Contains(err.Error(), "999_future.sql") {
		t.Fatalf("migrate with an unknown applied migration: %v; want an error naming it", err)
	}
}

// Views are repeatable: one whose recorded text differs is re-created, a
// missing one is created again, and one no longer embedded is dropped.
func TestViewsAreRepeatable(t *testing.T) {
	conn, cfg := migrated(t)
	ctx := context.Background()
	db := cfg.Database
	// v_cost_per_outcome recorded with another text and its definition
	// replaced by hand; v_cache_savings dropped by hand; v_old recorded
	// as created by an earlier schema.
	for _, q := range []string{
		"CREATE OR REPLACE VIEW " + db + ".v_cost_per_outcome AS SELECT 1 AS stale",
		"DROP VIEW " + db + ".v_cache_savings",
		"CREATE VIEW " + db + ".v_old AS SELECT 1 AS x",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".schema_views (name, checksum, applied_at)")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{{"v_cost_per_outcome", "0123456789abcdef"}, {"v_old", "fedcba9876543210"}} {
		if err := b.Append(r[0], r[1], time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	res, err := chx.Migrate(ctx, conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Views, ",") != "v_cost_per_outcome,v_cache_savings" || strings.Join(res.Dropped, ",") != "v_old" {
		t.Fatalf("views re-created %v, dropped %v; want [v_cost_per_outcome v_cache_savings] and [v_old]", res.Views, res.Dropped)
	}
	got := rowsOf(t, conn, "SELECT name FROM system.columns WHERE database = '"+db+"' AND table = 'v_cost_per_outcome' AND name = 'cost_per_outcome'")
	if len(got) != 1 {
		t.Errorf("v_cost_per_outcome was not re-created from the schema")
	}
	got = rowsOf(t, conn, "SELECT name FROM system.tables WHERE database = '"+db+"' AND name IN ('v_cache_savings', 'v_old') ORDER BY name")
	if len(got) != 1 || got[0][0] != "v_cache_savings" {
		t.Errorf("after migrate: %v; want v_cache_savings back and v_old gone", got)
	}
	if res, err := chx.Migrate(ctx, conn, cfg); err != nil || len(res.Views)+len(res.Dropped) != 0 {
		t.Fatalf("third migrate: views %v, dropped %v, err %v; want nothing to do", res.Views, res.Dropped, err)
	}
}

func TestRenderForCluster(t *testing.T) {
	m := chx.Migration{Name: "x", SQL: "CREATE TABLE IF NOT EXISTS {{db}}.x{{onCluster}}\n(a Int8, c {{money}})\nENGINE = {{engine \"x\" \"SummingMergeTree\"}}\nORDER BY a;\n" +
		"CREATE TABLE IF NOT EXISTS {{db}}.z{{onCluster}} (a Int8) ENGINE = {{engine \"z\" \"ReplacingMergeTree\" \"a\"}} ORDER BY a;\n"}
	got, err := m.Statements(chx.Target{Database: "tm", Cluster: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"CREATE TABLE IF NOT EXISTS tm.x ON CLUSTER prod\n(a Int8, c Decimal(38, 12))\nENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/tm/x', '{replica}')\nORDER BY a",
		"CREATE TABLE IF NOT EXISTS tm.z ON CLUSTER prod (a Int8) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tm/z', '{replica}', a) ORDER BY a",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("cluster:\ngot  %q\nwant %q", got, want)
	}
	got, err = m.Statements(chx.Target{Database: "tm"})
	if err != nil {
		t.Fatal(err)
	}
	if got[1] != "CREATE TABLE IF NOT EXISTS tm.z (a Int8) ENGINE = ReplacingMergeTree(a) ORDER BY a" {
		t.Fatalf("single server: %q", got[1])
	}
	// The checksum does not depend on where the schema is rendered.
	a, _ := m.Checksum()
	m2 := m
	m2.SQL += "\n-- a comment is a change too\n"
	b, _ := m2.Checksum()
	if a == "" || a == b {
		t.Fatalf("checksums %q and %q: want a non-empty checksum that changes with the text", a, b)
	}
	if _, err := (chx.Migration{Name: "bad", SQL: "ENGINE = {{engine \"x\" \"Log\"}}"}).Statements(chx.Target{Database: "tm"}); err == nil {
		t.Fatal("engine Log rendered; want an error (only *MergeTree engines)")
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

// TableColumns reads the schema as the server does: for every table the
// migrations create, the same columns in the same order with the same types
// as system.columns.
func TestTableColumnsMatchTheServer(t *testing.T) {
	conn, cfg := migrated(t)
	tables := rowsOf(t, conn, "SELECT name FROM system.tables WHERE database = '"+cfg.Database+"' AND engine LIKE '%MergeTree' AND name NOT LIKE 'schema\\\\_%' ORDER BY name")
	if len(tables) < 14 {
		t.Fatalf("only %d tables", len(tables))
	}
	for _, tb := range tables {
		cols, err := chx.TableColumns(tb[0])
		if err != nil {
			t.Errorf("%s: %v", tb[0], err)
			continue
		}
		var got []string
		for _, c := range cols {
			got = append(got, c.Name+" "+c.Type)
		}
		var want []string
		for _, r := range rowsOf(t, conn, "SELECT name, type FROM system.columns WHERE database = '"+cfg.Database+"' AND table = '"+tb[0]+"' ORDER BY position") {
			want = append(want, r[0]+" "+r[1])
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: TableColumns\n%s\nsystem.columns\n%s", tb[0], strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if _, err := chx.TableColumns("no_such_table"); err == nil {
		t.Error("TableColumns(no_such_table): no error")
	}
}
