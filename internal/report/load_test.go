package report

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/forecast"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
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

func insertPriced(t *testing.T, conn driver.Conn, db string, rows [][5]string) {
	t.Helper()
	// workflow, provider/model, event time, USD effective cost, HKD billed cost; 1000 input (500 cached), 200 output.
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+db+`.priced_usage (event_id, event_time, local_date, time_zone,
tenant, provider, model, service_tier, workflow, input_tokens, cache_read_input_tokens, uncached_input_tokens, output_tokens,
non_reasoning_output_tokens, effective_cost, pricing_currency, billing_currency, fx_rate, billed_effective_cost, kafka_topic, kafka_partition, kafka_offset)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		at, _ := time.Parse(time.RFC3339, r[2])
		prov, model, _ := strings.Cut(r[1], "/")
		if err := b.Append(fmt.Sprintf("e%d", i), at, at.In(hk), "Asia/Hong_Kong", "acme", prov, model, "standard", r[0],
			uint64(1000), uint64(500), uint64(500), uint64(200), uint64(200), decimal.RequireFromString(r[3]), "USD", "HKD",
			decimal.RequireFromString("7.8"), decimal.RequireFromString(r[4]), "priced", int32(0), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

var hk, _ = time.LoadLocation("Asia/Hong_Kong")

// The pack's numbers come from the views and match them exactly; the hand
// computation is in each comment.
func TestLoadFromClickHouse(t *testing.T) {
	conn, db := migrated(t)
	ctx := context.Background()
	eng, err := pricing.Load(pricing.Config{Catalogues: []string{"testdata/catalogue.yaml"}, Contracts: "testdata/contracts.yaml"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := forecast.Read("testdata/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := forecast.Build(plan, eng, forecast.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := forecast.Approve(ctx, conn, db, res, "cfo@acme", "", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	insertPriced(t, conn, db, [][5]string{
		// 2026-09-30 17:00 UTC is 2026-10-01 01:00 in Hong Kong: October.
		{"support", "openai/big", "2026-09-30T17:00:00Z", "3.90", "30"},
		{"support", "openai/small", "2026-10-20T03:00:00Z", "0.06", "0.5"},
		{"support", "openai/big", "2026-11-03T03:00:00Z", "1.30", "10"},
	})
	per, _ := ParsePeriod("2026-Q4")
	d, err := Load(ctx, Source{Conn: conn, DB: db}, LoadOptions{Tenant: "acme", Currency: "HKD", TimeZone: "Asia/Hong_Kong", Period: per,
		Now: time.Date(2026, 11, 15, 0, 0, 0, 0, hk), Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	var viewOct decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT sum(spend) FROM "+db+".v_workflow_period WHERE tenant = 'acme' AND period = 'month' AND period_start = '2026-10-01'").Scan(&viewOct); err != nil {
		t.Fatal(err)
	}
	eqv(t, "Oct spend", d.Months[10].Spend, "30.5") // 30 + 0.5, the Sep 30 UTC call counted in October
	if !d.Months[10].Spend.D.Equal(viewOct) {
		t.Errorf("Oct spend %s != view %s", d.Months[10].Spend.D, viewOct)
	}
	if d.Months[9].HasUsage || d.Months[12].HasUsage {
		t.Error("September/December have no usage")
	}
	eqv(t, "Oct forecast", d.Months[10].Forecast, "88.569") // 22.23 + 66.339
	eqv(t, "Oct envelope", d.Months[10].Envelope, "83.33")  // Q4 250 / 3, cents down
	eqv(t, "Dec envelope", d.Months[12].Envelope, "83.34")
	if d.Forecast == nil || d.Forecast.ApprovedBy != "cfo@acme" {
		t.Fatalf("version %+v", d.Forecast)
	}
	r := d.Reconciliation
	if r == nil || r.From != 11 {
		t.Fatalf("reconciliation %+v", r)
	}
	// Jan-Sep actual 0, Oct actual 30.5, Nov + Dec model 2 × 88.569
	if !r.BottomUp.Equal(decimal.RequireFromString("207.638")) {
		t.Errorf("bottom-up %s", r.BottomUp)
	}
	eqv(t, "projected year", d.Reforecast, "207.638")
	// Bridge: Jan-Sep (planned, no usage) and October; every month adds up.
	var oct *struct{ v, s decimal.Decimal }
	for _, b := range d.Bridge {
		if !b.Sum().Equal(b.Variance) {
			t.Errorf("bridge %d does not add up", b.Month)
		}
		if b.Month == 10 {
			oct = &struct{ v, s decimal.Decimal }{b.Variance, b.Actual}
		}
	}
	if oct == nil || !oct.v.Equal(decimal.RequireFromString("-58.069")) { // 30.5 - 88.569
		t.Fatalf("October bridge %+v", oct)
	}
	// Routing: the openai/small call on support's main model openai/big
	// (H2 price: 500×1 + 500×0.25 + 200×4 per 1e6 = 0.001425 USD) saved
	// (0.001425 − 0.06) × 7.8 = −0.058575 × 7.8 = −0.456885 (it cost more: the test row's price is made up).
	for _, s := range d.Savings {
		if s.Month == 10 {
			eqv(t, "Oct routing", s.Routing, "-0.456885")
		}
	}
	var h bytes.Buffer
	if err := WriteHTML(&h, Build(d, nil)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"HKD 40.50", "HKD 207.64", "Variance bridge", "support"} {
		if !strings.Contains(h.String(), want) {
			t.Errorf("pack misses %q", want)
		}
	}
}

func eqv(t *testing.T, what string, v Value, want string) {
	t.Helper()
	if !v.OK || !v.D.Equal(decimal.RequireFromString(want)) {
		t.Errorf("%s = %+v, want %s", what, v, want)
	}
}
