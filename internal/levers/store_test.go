package levers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/exact"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// call is one priced_usage row, written as the sink would. Costs are in
// USD (pricing currency); billed costs are derived with fx.
type call struct {
	id, wf, model, tmpl, ver, conv, trace, op, tier string
	at                                              time.Time
	in, read, write, write1h, out, reasoning        uint64
	costIn, costRead, costWrite, costOut            string
	billed                                          string // billed_effective_cost; "" = sum of classes x fx
	fx                                              string // default 1
	cur                                             string // billing currency, default USD
}

func migrated(t testing.TB) (driver.Conn, string) { return testenv.MigratedClickHouse(t) }

func orZero(s string) decimal.Decimal {
	if s == "" {
		return decimal.Zero
	}
	return decimal.RequireFromString(s)
}

func insertCalls(t *testing.T, conn driver.Conn, db string, calls []call) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+db+`.priced_usage (event_id, event_time, local_date, time_zone,
tenant, provider, model, operation, service_tier, workflow, prompt_template, prompt_version, conversation_id, trace_id,
input_tokens, cache_read_input_tokens, cache_write_input_tokens, cache_write_1h_input_tokens, uncached_input_tokens,
output_tokens, reasoning_tokens, non_reasoning_output_tokens, pricing_tier, price_id,
cost_input, cost_cache_read, cost_cache_write, cost_output, effective_cost, pricing_currency,
billing_currency, fx_rate, billed_effective_cost, kafka_topic, kafka_partition, kafka_offset)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range calls {
		fx := orZero(c.fx)
		if c.fx == "" {
			fx = decimal.NewFromInt(1)
		}
		cur := c.cur
		if cur == "" {
			cur = "USD"
		}
		tier := c.tier
		if tier == "" {
			tier = "standard"
		}
		eff := orZero(c.costIn).Add(orZero(c.costRead)).Add(orZero(c.costWrite)).Add(orZero(c.costOut))
		billed := eff.Mul(fx)
		if c.billed != "" {
			billed = decimal.RequireFromString(c.billed)
		}
		if err := b.Append(c.id, c.at, c.at, "UTC", "acme", "openai", c.model, c.op, "standard", c.wf, c.tmpl, c.ver, c.conv, c.trace,
			c.in, c.read, c.write, c.write1h, c.in-c.read-c.write, c.out, c.reasoning, c.out-c.reasoning, tier, "openai/"+c.model+"/"+tier,
			orZero(c.costIn), orZero(c.costRead), orZero(c.costWrite), orZero(c.costOut), eff, "USD",
			cur, fx, billed, "priced", int32(0), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

func insertOutcomes(t *testing.T, conn driver.Conn, db, wf string, at time.Time, count uint64, cur string) {
	t.Helper()
	if cur == "" {
		cur = "USD"
	}
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+db+`.outcomes (outcome_id, event_time, local_date, time_zone,
tenant, workflow, outcome_type, count, billing_currency, kafka_topic, kafka_partition, kafka_offset)`)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(wf+at.String(), at, at, "UTC", "acme", wf, "done", count, cur, "outcomes", int32(0), int64(0)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

func repeat(n int, c call) []call {
	out := make([]call, n)
	for i := range out {
		out[i] = c
		out[i].id = c.id + "-" + strings.Repeat("x", 0) + time.Duration(i).String()
		out[i].at = c.at.Add(time.Duration(i) * time.Second)
	}
	return out
}

func TestWhatIfAndLongContextOnClickHouse(t *testing.T) {
	conn, db := migrated(t)
	src := Source{Conn: conn, DB: db}
	e := testEngine(t)
	june := time.Date(2026, 6, 15, 10, 5, 0, 0, time.UTC)
	july := time.Date(2026, 7, 2, 0, 30, 0, 0, time.UTC)
	calls := repeat(3, call{id: "j", wf: "support", model: "big", at: june, in: 20000, read: 8000, out: 2000, billed: "10", cur: "HKD"})
	// One call of 150,000 input tokens, above big's 100,000 threshold.
	calls = append(calls, call{id: "l", wf: "support", model: "big", at: july, in: 150000, out: 1000, billed: "2", cur: "HKD", tier: "standard_long_context"})
	insertCalls(t, conn, db, calls)
	f := Filter{Tenant: "acme", From: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC), Column: "workflow", Value: "support"}
	ws, err := src.WhatIfs(context.Background(), e, f, []Candidate{{"openai", "small"}, {"openai", "big"}}, CacheSame)
	if err != nil {
		t.Fatal(err)
	}
	// small: June 60,000 x 1/M + 6,000 x 4/M = 0.084, -10% = 0.0756, x 7.8
	// = 0.58968; July 150,000 x 0.5/M + 1,000 x 2/M = 0.077, -10% = 0.0693,
	// x 7.75 = 0.537075. Total 1.126755 against 32 actual.
	// big: June 36,000 x 10/M + 24,000 x 1/M + 6,000 x 30/M = 0.564 x 7.8 =
	// 4.3992; July (long) 150,000 x 20/M + 1,000 x 45/M = 3.045 x 7.75 =
	// 23.59875. Total 27.99795.
	if len(ws) != 2 || ws[0].Candidate.Model != "small" || !ws[0].Repriced.Equal(dec("1.126755")) || !ws[0].Actual.Equal(dec("32")) {
		t.Fatalf("small: %+v", ws)
	}
	if !ws[1].Repriced.Equal(dec("27.99795")) || ws[1].Calls != 4 {
		t.Fatalf("big: %+v", ws[1])
	}
	// Staying below the threshold: the long call at big's standard rates,
	// 150,000 x 10/M + 1,000 x 30/M = 1.53 x 7.75 = 11.8575, against 2 paid.
	lc, err := src.LongContext(context.Background(), e, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(lc) != 1 || lc[0].Calls != 1 || !lc[0].Below.Equal(dec("11.8575")) || !lc[0].Actual.Equal(dec("2")) {
		t.Fatalf("long context: %+v", lc)
	}
	// Top savings: routing to small saves 32 - 1.126755; staying below the
	// threshold would cost more than was paid, so it is no saving.
	f.Column, f.Value = "", ""
	top, err := src.TopSavings(context.Background(), e, f, []Candidate{{"openai", "small"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 1 || top[0].Lever != LeverRouting || top[0].Workflow != "support" || !top[0].Amount.Equal(dec("30.873245")) {
		t.Fatalf("top: %+v", top)
	}
}

func TestPromptVersionFlaggedWhenCostPerOutcomeRises(t *testing.T) {
	conn, db := migrated(t)
	d1 := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
	d2 := d1.AddDate(0, 0, 1)
	// v1: 10 calls of 1,000 in + 100 out at 1.00 each; 10 outcomes: CPO 1.00.
	// v2 doubles the prompt on a model 60% cheaper per token and needs 20
	// calls for 10 outcomes: 0.80 per call (-20%), 1.60 per outcome (+60%),
	// 2,200 tokens per call (+100%); extra cost (1.60 - 1.00) x 10 = 6.
	calls := repeat(10, call{id: "a", wf: "legal", model: "big", tmpl: "review", ver: "v1", at: d1, in: 1000, out: 100, costIn: "0.5", costOut: "0.5"})
	calls = append(calls, repeat(20, call{id: "b", wf: "legal", model: "small", tmpl: "review", ver: "v2", at: d2, in: 2000, out: 200, costIn: "0.4", costOut: "0.4"})...)
	insertCalls(t, conn, db, calls)
	insertOutcomes(t, conn, db, "legal", d1, 10, "")
	insertOutcomes(t, conn, db, "legal", d2, 10, "")
	got := queryStrings(t, conn, `SELECT prompt_version, calls, toString(cost_per_call), toString(cost_per_outcome),
	toString(round(tokens_per_call_change, 6)), toString(cost_per_outcome_change), flagged, toString(extra_cost)
	FROM `+db+`.v_prompt_versions ORDER BY first_seen`)
	want := [][]string{
		{"v1", "10", "1", "1", "", "", "false", ""},
		{"v2", "20", "0.8", "1.6", "1", "0.6", "true", "6"},
	}
	compareRows(t, got, want)
}

func TestCacheWritesNeverReadBack(t *testing.T) {
	conn, db := migrated(t)
	t0 := time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)
	w := call{wf: "chat", model: "big", in: 1000, write: 1000, costWrite: "0.00375", fx: "8", cur: "HKD"} // 0.03 HKD per write
	r := call{wf: "chat", model: "big", in: 1000, read: 1000, costRead: "0.001", fx: "8", cur: "HKD"}
	var calls []call
	add := func(c call, id, conv string, at time.Time, oneHour bool) {
		c.id, c.conv, c.at = id, conv, at
		if oneHour {
			c.write1h = c.write
		}
		calls = append(calls, c)
	}
	add(w, "w1", "c1", t0, false)
	add(r, "r1", "c1", t0.Add(2*time.Minute), false) // read back within 5 minutes
	add(w, "w2", "c2", t0, false)
	add(r, "r2", "c2", t0.Add(10*time.Minute), false) // too late for a 5-minute write
	add(w, "w3", "c3", t0, true)
	add(r, "r3", "c3", t0.Add(10*time.Minute), false) // in time for a 1-hour write
	add(w, "w4", "", t0, false)                       // no conversation or trace: cannot be followed
	insertCalls(t, conn, db, calls)
	got := queryStrings(t, conn, `SELECT toString(write_spend), toString(unread_write_spend), toString(unknown_write_spend), toString(hit_rate)
	FROM `+db+`.v_cache_efficiency`)
	// 4 writes x 0.03 = 0.12; unread: w2 = 0.03; unknown: w4 = 0.03;
	// hit rate 3,000 read / 7,000 input.
	compareRows(t, got, [][]string{{"0.12", "0.03", "0.03", "0.42857142857142855"}})
}

func TestDecompositionFromClickHouse(t *testing.T) {
	conn, db := migrated(t)
	q3 := time.Date(2026, 7, 10, 0, 0, 0, 0, time.UTC)
	q4 := time.Date(2026, 10, 10, 0, 0, 0, 0, time.UTC)
	// The traffic of TestDecomposeByHand, one row per call.
	calls := repeat(100, call{id: "q3", wf: "w", model: "A", at: q3, in: 1000, out: 100, costIn: "0.0025", costOut: "0.001"})
	calls = append(calls, repeat(50, call{id: "q4a", wf: "w", model: "A", at: q4, in: 1500, read: 400, out: 100, costIn: "0.00275", costRead: "0.0005", costOut: "0.001"})...)
	calls = append(calls, repeat(50, call{id: "q4b", wf: "w", model: "B", at: q4, in: 2000, out: 100, costIn: "0.0003", costOut: "0.00006"})...)
	insertCalls(t, conn, db, calls)
	insertOutcomes(t, conn, db, "w", q3, 10, "")
	insertOutcomes(t, conn, db, "w", q4, 8, "")
	src := Source{Conn: conn, DB: db}
	q3p := [2]time.Time{time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)}
	q4p := [2]time.Time{q3p[1], time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
	d, both, cur, err := src.DecomposePeriods(context.Background(), "acme", "w", q3p, q4p)
	if err != nil {
		t.Fatal(err)
	}
	// Before/after: cost per call 0.35/100 = 0.0035 -> 0.2305/100 = 0.002305
	// (falls), per outcome 0.035 -> 0.0288125, tokens per call 1100 -> 1850.
	fb, fa := FiguresOf(both[0]), FiguresOf(both[1])
	if exact.Round(fb.CostPerCall, 12).String() != "0.0035" || exact.Round(fa.CostPerCall, 12).String() != "0.002305" ||
		exact.Round(fa.TokensPerCall, 6).String() != "1850" || exact.Round(fb.OutcomesPerCall, 6).String() != "0.1" {
		t.Fatalf("figures before %+v after %+v", fb, fa)
	}
	want := map[string]string{LeverPrice: "0", LeverRouting: "-0.0157", LeverPrompt: "0.00625", LeverCaching: "-0.0025", LeverVolume: "0.0057625"}
	for l, w := range want {
		if got := exact.Round(d.Effects[l], 12); !got.Equal(dec(w)) {
			t.Errorf("%s: %s, want %s", l, got, w)
		}
	}
	if cur != "USD" || !exact.Round(d.Before, 12).Equal(dec("0.035")) || !exact.Round(d.After, 12).Equal(dec("0.0288125")) {
		t.Fatalf("%s before %s after %s", cur, d.Before.FloatString(6), d.After.FloatString(6))
	}
}

func driftHistory(t *testing.T) (driver.Conn, string, time.Time) {
	t.Helper()
	conn, db := migrated(t)
	start := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	var calls []call
	for d := 0; d < 40; d++ {
		at := start.AddDate(0, 0, d)
		// steady: 4 calls a day of 1,000 + 100 tokens with a little noise
		// (the 4th call's output varies by day, 80..120).
		ver, in := "v1", uint64(1000)
		if d >= 25 {
			ver, in = "v2", 2500 // a new prompt version more than doubles the input
		}
		for i := 0; i < 4; i++ {
			out := uint64(100)
			if i == 3 {
				out = uint64(80 + (d*7)%41)
			}
			calls = append(calls, call{id: "s" + at.Format("0102") + string(rune('a'+i)), wf: "steady", model: "big", tmpl: "t", ver: "v1", at: at.Add(time.Duration(i) * time.Minute), in: 1000, out: out, costIn: "0.01", costOut: "0.003"})
			calls = append(calls, call{id: "p" + at.Format("0102") + string(rune('a'+i)), wf: "drift", model: "big", tmpl: "t", ver: ver, at: at.Add(time.Duration(i) * time.Minute), in: in, out: out, costIn: "0.01", costOut: "0.003"})
		}
	}
	insertCalls(t, conn, db, calls)
	return conn, db, start
}

func TestAnomalyFoundOnceWithItsCause(t *testing.T) {
	conn, db, start := driftHistory(t)
	src := Source{Conn: conn, DB: db}
	as, err := src.Anomalies(context.Background(), "acme", start.Truncate(24*time.Hour), start.AddDate(0, 0, 41), DetectConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 {
		t.Fatalf("%d anomalies, want 1 (drift's tokens per call): %+v", len(as), as)
	}
	a := as[0]
	if a.Workflow != "drift" || a.Driver != DriverTokensPerCall || !a.Start.Equal(time.Date(2026, 8, 26, 0, 0, 0, 0, time.UTC)) || !a.Rising {
		t.Fatalf("%+v", a)
	}
	if a.Cause != "new prompt version t@v2" || !a.ImpactKnown {
		t.Fatalf("cause %q impact %v", a.Cause, a.ImpactKnown)
	}
}

func queryStrings(t *testing.T, conn driver.Conn, q string) [][]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT * FROM ("+q+") FORMAT Null")
	if err == nil {
		rows.Close()
	}
	rows, err = conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		cols := rows.ColumnTypes()
		vals := make([]any, len(cols))
		for i, c := range cols {
			switch c.DatabaseTypeName() {
			case "Bool":
				vals[i] = new(bool)
			case "UInt64":
				vals[i] = new(uint64)
			default:
				vals[i] = new(*string)
			}
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			switch x := v.(type) {
			case *bool:
				row[i] = map[bool]string{true: "true", false: "false"}[*x]
			case *uint64:
				row[i] = decimal.NewFromInt(int64(*x)).String()
			case **string:
				if *x != nil {
					row[i] = **x
				}
			}
		}
		out = append(out, row)
	}
	return out
}

func compareRows(t *testing.T, got, want [][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		for j := range want[i] {
			g, w := got[i][j], want[i][j]
			if g == w {
				continue
			}
			dg, e1 := decimal.NewFromString(g)
			dw, e2 := decimal.NewFromString(w)
			if e1 == nil && e2 == nil && dg.Equal(dw) {
				continue
			}
			t.Fatalf("row %d col %d: got %q want %q (rows %v)", i, j, g, w, got)
		}
	}
}

func TestRoutingAndCacheAbsentViews(t *testing.T) {
	conn, db := migrated(t)
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	// triage: 3 short-output calls (10 tokens) at 0.5 USD and one long answer
	// at 1.5 USD on big, one call on small at 0.1 USD.
	calls := repeat(3, call{id: "s", wf: "triage", model: "big", at: at, in: 200, out: 10, costIn: "0.4", costOut: "0.1"})
	calls = append(calls, call{id: "l", wf: "triage", model: "big", at: at, in: 200, out: 500, costIn: "0.5", costOut: "1"},
		call{id: "m", wf: "triage", model: "small", at: at, in: 200, out: 500, costIn: "0.05", costOut: "0.05"})
	// docs: input-heavy (5,000 per call), no cache reads, on big whose cache
	// read price (1/M) is below its input price (10/M).
	calls = append(calls, repeat(2, call{id: "d", wf: "docs", model: "big", at: at, in: 5000, out: 100, costIn: "0.05", costOut: "0.003", fx: "7.8", cur: "HKD"})...)
	insertCalls(t, conn, db, calls)
	ctx := context.Background()
	if err := conn.Exec(ctx, "INSERT INTO "+db+`.price_catalogue (provider, model, tier, price_id, version, currency, input_per_mtok, cache_read_per_mtok, output_per_mtok, synced_at)
		VALUES ('openai', 'big', 'standard', 'openai/big/standard', 't', 'USD', 10, 1, 30, now())`); err != nil {
		t.Fatal(err)
	}
	compareRows(t, queryStrings(t, conn, `SELECT model, calls, toString(call_share), toString(spend_share) FROM `+db+`.v_model_mix WHERE workflow = 'triage' ORDER BY model`),
		// 4 of 5 calls on big; spend 3.0 of 3.1.
		[][]string{{"big", "4", "0.8", "0.967741935483"}, {"small", "1", "0.2", "0.032258064516"}})
	compareRows(t, queryStrings(t, conn, `SELECT model, calls, candidate_calls, toString(candidate_spend) FROM `+db+`.v_small_model_candidates WHERE workflow = 'triage'`),
		[][]string{{"big", "4", "3", "1.5"}})
	// 10,000 uncached input x 0.5 x (10 - 1)/M = 0.045 USD, x 7.8 = 0.351 HKD.
	compareRows(t, queryStrings(t, conn, `SELECT workflow, toString(saving_pricing_currency), toString(saving) FROM `+db+`.v_cache_absent`),
		[][]string{{"docs", "0.045", "0.351"}})
}
