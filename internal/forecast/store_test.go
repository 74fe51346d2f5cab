package forecast

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

func migrated(t *testing.T) (driver.Conn, string) {
	t.Helper()
	conn, db := testenv.ClickHouse(t)
	cfg := chx.Config{Addr: testenv.ClickHouseAddr(t), Database: db}
	cfg.ApplyDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := chx.Migrate(ctx, conn, cfg); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return conn, db
}

// usageRow is one priced call as the sink writes it (HKD billing).
type usageRow struct {
	wf, model, user, session string
	at                       time.Time
	in, read, write, out     uint64
	cost, billed             string
}

func insertUsage(t *testing.T, conn driver.Conn, db string, rows []usageRow) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+db+`.priced_usage (event_id, event_time, local_date, time_zone,
tenant, provider, model, service_tier, workflow, user_id, session_id, input_tokens, cache_read_input_tokens, cache_write_input_tokens,
uncached_input_tokens, output_tokens, non_reasoning_output_tokens, effective_cost, pricing_currency, billing_currency, fx_rate,
billed_effective_cost, kafka_topic, kafka_partition, kafka_offset)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if err := b.Append(fmt.Sprintf("e%d", i), r.at, r.at, "UTC", "acme", "openai", r.model, "standard", r.wf, r.user, r.session,
			r.in, r.read, r.write, r.in-r.read-r.write, r.out, r.out, decimal.RequireFromString(r.cost), "USD", "HKD", decimal.RequireFromString("7.8"),
			decimal.RequireFromString(r.billed), "priced", int32(0), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

func TestApproveAndVarianceOnClickHouse(t *testing.T) {
	conn, db := migrated(t)
	ctx := context.Background()
	p := testPlan(t)
	r, err := Build(p, testEngine(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	v1, err := Approve(ctx, conn, db, r, "cfo@acme", "first", time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	// A second approval with agent cut replaces the first in force.
	q, _, _ := ApplyLever(p, nil, "agent", Lever{Kind: LeverCut})
	q.raw = p.raw
	q.Scenario = "cut-agent"
	r2, err := Build(q, testEngine(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := Approve(ctx, conn, db, r2, "cfo@acme", "second", time.Date(2026, 2, 5, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := Versions(ctx, conn, db, "acme", 2026)
	if err != nil || len(vs) != 2 || vs[0].ID != v2.ID || vs[1].ID != v1.ID {
		t.Fatalf("versions %+v %v", vs, err)
	}
	eq(t, "v1 total", vs[1].Total, "1129.518")
	eq(t, "v2 total", vs[0].Total, "333.45")
	cur, err := Current(ctx, conn, db, "acme", 2026)
	if err != nil || cur == nil || cur.ID != v2.ID || cur.ApprovedBy != "cfo@acme" || cur.Plan.Tenant != "acme" {
		t.Fatalf("current %+v %v", cur, err)
	}

	// January actual for support: 2 calls, HKD 30 + 0.5.
	insertUsage(t, conn, db, []usageRow{
		{wf: "support", model: "big", user: "u1", session: "s1", at: time.Date(2026, 1, 10, 1, 0, 0, 0, time.UTC), in: 1000, read: 500, out: 200, cost: "3.846153846154", billed: "30"},
		{wf: "support", model: "big", user: "u2", session: "s2", at: time.Date(2026, 1, 11, 1, 0, 0, 0, time.UTC), in: 1000, read: 500, out: 200, cost: "0.064102564103", billed: "0.5"},
	})
	var actual, forecast, variance decimal.Decimal
	var pct *decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT actual, forecast, variance, variance_pct FROM "+db+".v_forecast_variance WHERE tenant = 'acme' AND workflow = 'support' AND month = '2026-01-01'").
		Scan(&actual, &forecast, &variance, &pct); err != nil {
		t.Fatal(err)
	}
	eq(t, "actual", actual, "30.5")
	eq(t, "forecast (version in force)", forecast, "22.23")
	eq(t, "variance", variance, "8.27")
	if pct == nil || !pct.Truncate(4).Equal(d("37.2019")) { // 8.27 / 22.23 × 100
		t.Errorf("variance_pct = %v", pct)
	}
	// agent was cut in v2: its forecast is 0, not v1's 66.339
	if err := conn.QueryRow(ctx, "SELECT forecast FROM "+db+".v_forecast_variance WHERE tenant = 'acme' AND workflow = 'agent' AND month = '2026-03-01'").Scan(&forecast); err != nil {
		t.Fatal(err)
	}
	eq(t, "agent forecast after cut", forecast, "0")

	var fc decimal.Decimal
	var calls decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT forecast, calls FROM "+db+".v_forecast_approved WHERE tenant = 'acme' AND workflow = 'support' AND month = '2026-07-01'").Scan(&fc, &calls); err != nil {
		t.Fatal(err)
	}
	eq(t, "approved Jul", fc, "22.23")
	eq(t, "approved Jul calls", calls, "2000")

	// Re-forecast: January is closed (tenant calendar), so actual; July open, so forecast.
	if err := chx.SyncTenants(ctx, conn, db, []chx.TenantRef{{ID: "acme", ReportingCurrency: "HKD", TimeZone: time.UTC}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		month, basis, amount string
	}{{"2026-01-01", "actual", "30.5"}} {
		var basis string
		var amount decimal.Decimal
		if err := conn.QueryRow(ctx, "SELECT basis, amount FROM "+db+".v_reforecast WHERE tenant = 'acme' AND workflow = 'support' AND month = ?", c.month).Scan(&basis, &amount); err != nil {
			t.Fatal(err)
		}
		if basis != c.basis {
			t.Errorf("%s basis %s, want %s", c.month, basis, c.basis)
		}
		eq(t, c.month+" amount", amount, c.amount)
	}
}

// Calibration by hand: over 28 days support had 2 users, 4 sessions and 12
// calls of 1500 input (600 read from cache) and 250 output:
//
//	sessions per user per month = 4 / 2 × 30.4375 / 28 = 2.1741 (4 places)
//	calls per session           = 12 / 4 = 3
func TestObserveAndWriteBackOnClickHouse(t *testing.T) {
	conn, db := migrated(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var rows []usageRow
	for i := 0; i < 12; i++ {
		rows = append(rows, usageRow{wf: "support", model: "big", user: fmt.Sprintf("u%d", i%2), session: fmt.Sprintf("s%d", i%4),
			at: start.Add(time.Duration(i) * time.Hour), in: 1500, read: 600, out: 250, cost: "0.01", billed: "0.078"})
	}
	rows = append(rows, usageRow{wf: "support", model: "big", user: "late", session: "x", at: start.AddDate(0, 0, 28), in: 1, out: 1, cost: "0", billed: "0"})
	insertUsage(t, conn, db, rows)
	obs, err := Observe(ctx, conn, db, "acme", start, start.AddDate(0, 0, 28))
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 1 || obs[0].Users != 2 || obs[0].Sessions != 4 || obs[0].Calls != 12 {
		t.Fatalf("observed %+v", obs)
	}
	o := obs[0]
	eq(t, "sessions/user/month", o.SessionsPerUserMonth, "2.1741")
	eq(t, "calls/session", o.CallsPerSession, "3")
	eq(t, "input/call", o.PerCall.Input, "1500")
	eq(t, "cached share", o.CachedShare, "0.4")
	eq(t, "output/call", o.PerCall.Output, "250")

	cmp := Compare(testPlan(t), obs)
	found := false
	for _, c := range cmp {
		if c.Workflow == "support" && c.Driver == "calls_per_session" && c.Planned == "2" && c.Observed == "3" {
			found = true
		}
	}
	if !found {
		t.Errorf("comparison %+v", cmp)
	}

	dir := t.TempDir()
	src, _ := os.ReadFile("testdata/plan.yaml")
	path := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteObserved(path, obs); err != nil {
		t.Fatal(err)
	}
	p, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	w := p.Workflow("support")
	eq(t, "written calls/session", w.CallsPerSession.D, "3")
	eq(t, "written sessions", w.SessionsPerUser.D, "2.1741")
	eq(t, "written input", w.Tokens.Input.D, "1500")
	eq(t, "written cached share", w.Tokens.CachedShare.D, "0.4")
	eq(t, "agent untouched", p.Workflow("agent").CallsPerSession.D, "25")
	b, _ := os.ReadFile(path)
	if !containsStr(string(b), "# Hand-computed test plan") {
		t.Error("comments were lost")
	}
}

func containsStr(s, sub string) bool { return strings.Contains(s, sub) }
