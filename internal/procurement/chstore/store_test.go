package chstore

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/procurement/bill"
	"github.com/tokenmeter/tokenmeter/internal/procurement/chargeback"
	"github.com/tokenmeter/tokenmeter/internal/procurement/commit"
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

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

type row struct {
	id             string
	at             time.Time
	tier           string
	in, read, out  uint64
	costIn, costRd string
	costOut        string
	fx, cur        string
	attrs          map[string]string
	reported       string
	wf, cc         string
}

func insert(t *testing.T, conn driver.Conn, db string, rows []row) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+db+`.priced_usage (event_id, event_time, local_date, time_zone,
tenant, provider, model, service_tier, input_tokens, cache_read_input_tokens, uncached_input_tokens, output_tokens,
non_reasoning_output_tokens, attribute_keys, attribute_values, pricing_tier, price_id, cost_input, cost_cache_read, cost_output,
list_cost, contracted_cost, effective_cost, pricing_currency, billing_currency, fx_rate, billed_effective_cost,
reported_cost, reported_cost_currency, workflow, cost_centre, kafka_topic, kafka_partition, kafka_offset)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		eff := d(r.costIn).Add(d(r.costRd)).Add(d(r.costOut))
		var ks, vs []string
		for k, v := range r.attrs {
			ks, vs = append(ks, k), append(vs, v)
		}
		rep := decimal.Zero
		if r.reported != "" {
			rep = d(r.reported)
		}
		if err := b.Append(r.id, r.at, r.at, "UTC", "acme", "openai", "gpt-4o-2024-08-06", "standard", r.in, r.read, r.in-r.read, r.out, r.out,
			ks, vs, r.tier, "openai/gpt-4o/"+r.tier+"@2024-01-01", d(r.costIn), d(r.costRd), d(r.costOut), eff, eff, eff, "USD", r.cur,
			d(r.fx), eff.Mul(d(r.fx)), rep, "USD", r.wf, r.cc, "priced", int32(0), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

func TestProcurementViewsOnClickHouse(t *testing.T) {
	conn, db := migrated(t)
	ctx := context.Background()
	nov := time.Date(2026, 11, 10, 9, 15, 0, 0, time.UTC)
	proj := map[string]string{"tokenmeter.provider_project": "proj_demo"}
	insert(t, conn, db, []row{
		// 1M input (200k cached) + 100k output at 2.00/0.?/8.00: costs as the pipeline stored them.
		{id: "a", at: nov, tier: "standard", in: 1_000_000, read: 200_000, out: 100_000, costIn: "1.6", costRd: "0.1", costOut: "0.8", fx: "7.8", cur: "HKD", attrs: proj},
		{id: "b", at: nov.Add(10 * time.Minute), tier: "standard", in: 10_000, out: 1_000, costIn: "0.02", costRd: "0", costOut: "0.008", fx: "7.8", cur: "HKD", attrs: proj},
		// A long-context call, flagged incomplete: the provider said 0.75, we metered 0.5.
		{id: "c", at: nov.Add(2 * time.Hour), tier: "standard_long_context", in: 120_000, out: 1_000, costIn: "0.48", costRd: "0", costOut: "0.012", fx: "7.8", cur: "HKD",
			attrs: map[string]string{"tokenmeter.provider_project": "proj_demo", "tokenmeter.usage_incomplete": "true"}, reported: "0.75"},
	})
	if err := conn.Exec(ctx, "INSERT INTO "+db+`.dlq (id, stage, reason, tenant, event_id, provider, model, event_time, rejected_at,
kafka_topic, kafka_partition, kafka_offset) VALUES ('x', 'processor', 'unknown_model', 'acme', 'e9', 'openai', 'gpt-9', ?, ?, 'dlq', 0, 0)`, nov, nov); err != nil {
		t.Fatal(err)
	}
	s := Store{Conn: conn, DB: db}

	us, err := s.Usage(ctx, "acme", "openai", []string{"2026-11"})
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 2 || us[0].LongContext || us[0].Requests != 2 || us[0].InputTokens != 1_010_000 || us[0].CacheReadInputTokens != 200_000 ||
		us[0].OutputTokens != 101_000 || !us[1].LongContext || us[1].Tier != "standard" || us[1].InputTokens != 120_000 {
		t.Fatalf("usage %+v", us)
	}

	ms, err := s.Metered(ctx, nov.Truncate(24*time.Hour), nov.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bill.Metered{}
	for _, m := range ms {
		got[m.Hour.Format("15")+" "+m.Class] = m
	}
	// 09h input: 800k + 10k uncached, 1.62 USD, 12.636 HKD; 11h output 1000 tokens 0.012.
	in9 := got["09 input"]
	if len(ms) != 5 || in9.Project != "proj_demo" || in9.Tokens != 810_000 || !in9.Cost.Equal(d("1.62")) || !in9.BilledCost.Equal(d("12.636")) ||
		in9.BillingCurrency != "HKD" || !in9.FXRate.Equal(d("7.8")) || got["09 cache_read"].Tokens != 200_000 || !got["11 output"].Cost.Equal(d("0.012")) {
		t.Fatalf("metered %+v", ms)
	}

	ev, err := s.Evidence(ctx, nov.Truncate(24*time.Hour), nov.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Incomplete: 0.75 reported − 0.492 metered = 0.258.
	if len(ev.DLQ) != 1 || ev.DLQ[0].Model != "gpt-9" || ev.DLQ[0].Events != 1 || len(ev.Incomplete) != 1 || !ev.Incomplete[0].Amount.Equal(d("0.258")) {
		t.Fatalf("evidence %+v", ev)
	}

	// Commitment drawdown from the daily spend view: 2.528 + 0.492 = 3.02 (the catalogue model from price_id).
	f, err := commit.Parse([]byte(`commitments: [{id: c, kind: commitment, provider: openai, amount: "100", start: 2026-11-01, expiry: 2027-11-01, applies_to: {models: [gpt-4o]}}]`))
	if err != nil {
		t.Fatal(err)
	}
	l, _ := commit.New(f)
	if err := s.DrawDown(ctx, l, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if st := l.Status(time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)); !st[0].Drawn.Equal(d("3.02")) {
		t.Fatalf("drawn %s", st[0].Drawn)
	}
	if err := s.WriteCommitments(ctx, f, time.Now()); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".v_focus_contract_commitment WHERE ContractCommitmentCategory = 'Spend' AND ContractCommitmentQuantity IS NULL").Scan(&n); err != nil || n != 12 {
		t.Fatalf("contract commitments: %d %v", n, err)
	}

	// A run of the reconciliation is stored and a re-run replaces it.
	rs := []bill.Result{{Day: "2026-11-10", Provider: "openai", Project: "proj_demo", Model: "gpt-4o", Currency: "USD", Metered: d("3.02"), Billed: d("3.30"),
		Difference: d("0.28"), Explained: []bill.Explanation{{Cause: bill.CauseIncomplete, Amount: d("0.258")}}, Residual: d("0.022")}}
	if err := s.WriteReconciliation(ctx, rs, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	rs[0].Residual = d("0.02")
	if err := s.WriteReconciliation(ctx, rs, time.Now()); err != nil {
		t.Fatal(err)
	}
	var residual decimal.Decimal
	var causes []string
	if err := conn.QueryRow(ctx, "SELECT residual, causes FROM "+db+".v_bill_reconciliation").Scan(&residual, &causes); err != nil ||
		!residual.Equal(d("0.02")) || len(causes) != 1 || causes[0] != bill.CauseIncomplete {
		t.Fatalf("reconciliation %s %v %v", residual, causes, err)
	}

	// Re-pricing the closed November with the test catalogue (gpt-4o input
	// 2.00, output 8.00; long context 4.00/12.00; cache reads at input price
	// by default): standard 1,010,000 × 2/M + 101,000 × 8/M = 2.828 (was
	// 2.528); long 120,000 × 4/M + 1,000 × 12/M = 0.492 (unchanged).
	cat, err := pricing.ReadCatalogue("testdata/catalogue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := pricing.New([]*pricing.CatalogueFile{cat}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	origs, err := s.Originals(ctx, "acme", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := Reprice(eng, origs)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || !cs[0].EffectiveCost.Equal(d("0.3")) || cs[0].ChargeClass != "Correction" {
		t.Fatalf("corrections %+v", cs)
	}
	if err := s.WriteCorrections(ctx, cs, "USD", time.Now()); err != nil {
		t.Fatal(err)
	}
	var orig, corr decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT sumIf(EffectiveCost, ChargeClass = ''), sumIf(EffectiveCost, ChargeClass = 'Correction') FROM "+db+".v_focus_usage_corrected").Scan(&orig, &corr); err != nil ||
		!orig.Equal(d("3.02")) || !corr.Equal(d("0.3")) {
		t.Fatalf("originals %s corrections %s %v", orig, corr, err)
	}
}

func TestChargebackFromClickHouse(t *testing.T) {
	conn, db := migrated(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	r := func(id, wf, cc, cost string) row {
		return row{id: id, at: at, tier: "standard", in: 10, out: 1, costIn: cost, costRd: "0", costOut: "0", fx: "7.8", cur: "HKD", wf: wf, cc: cc}
	}
	// support is shared: A made 2 calls, B 1 (1.00 USD each = 7.80 HKD);
	// legal is B's own (0.50 USD = 3.90 HKD).
	insert(t, conn, db, []row{r("1", "support", "A", "1"), r("2", "support", "A", "1"), r("3", "support", "B", "1"), r("4", "legal", "B", "0.5")})
	spend, drivers, err := Store{Conn: conn, DB: db}.ChargebackInputs(ctx, "acme", "2026-11", "HKD")
	if err != nil {
		t.Fatal(err)
	}
	c := &chargeback.Config{Currency: "HKD", Shared: []chargeback.SharedRule{{ID: "support-split", Workflow: "support", Driver: "calls"}}}
	c.SetDefaults()
	allocs, err := chargeback.Allocate(c, spend, drivers, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := chargeback.Build(c, allocs)
	// support 23.40 HKD split 2:1 → A 15.60, B 7.80; B also 3.90 direct.
	got := map[string]string{}
	for _, l := range st.Lines {
		got[l.CostCentre] = l.Total.String()
	}
	if got["A"] != "15.6" || got["B"] != "11.7" || !st.Total["2026-11"].Equal(d("27.3")) {
		t.Fatalf("statement %v total %s (spend %+v drivers %+v)", got, st.Total["2026-11"], spend, drivers)
	}
}
