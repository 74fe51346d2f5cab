package chx_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/chx"
)

type usage struct {
	id, wf, team, model, prompt, version, task, trace string
	at                                                time.Time
	local                                             string // tenant-local date, by hand
	cost                                              string // billed_effective_cost, HKD
	input, cacheRead                                  uint64
	cacheSavings                                      string // billed_cache_savings
	priceID                                           string
	fx                                                string // fx_rate; default 8
}

func day(s string) time.Time { t, _ := time.Parse("2006-01-02", s); return t }

func insertUsage(t *testing.T, conn driver.Conn, db string, rows []usage) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+db+".priced_usage (event_id, event_time, local_date, time_zone, tenant, provider, model, workflow, team, prompt_template, prompt_version, task_id, trace_id, input_tokens, cache_read_input_tokens, output_tokens, pricing_currency, effective_cost, billing_currency, billed_effective_cost, billed_list_cost, billed_cache_savings, fx_rate, price_id, kafka_topic, kafka_partition, kafka_offset)")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		cost := decimal.RequireFromString(r.cost)
		saved := decimal.Zero
		if r.cacheSavings != "" {
			saved = decimal.RequireFromString(r.cacheSavings)
		}
		fx := decimal.NewFromInt(8)
		if r.fx != "" {
			fx = decimal.RequireFromString(r.fx)
		}
		if err := b.Append(r.id, r.at, day(r.local), "Asia/Hong_Kong", "acme", "openai", r.model, r.wf, r.team, r.prompt, r.version,
			r.task, r.trace, r.input, r.cacheRead, uint64(10), "USD", cost.Div(fx).Round(12), "HKD", cost, cost, saved, fx,
			r.priceID, "priced", int32(0), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

type outcome struct {
	id, wf, trace, currency string
	at                      time.Time
	local                   string
	count                   uint64
	value                   string
}

func insertOutcomes(t *testing.T, conn driver.Conn, db string, rows []outcome) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+db+".outcomes (outcome_id, event_time, local_date, time_zone, tenant, workflow, outcome_type, count, value_amount, value_currency, billing_currency, trace_id, kafka_topic, kafka_partition, kafka_offset)")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		cur := r.currency
		if cur == "" {
			cur = "HKD"
		}
		if err := b.Append(r.id, r.at, day(r.local), "Asia/Hong_Kong", "acme", r.wf, "ticket_resolved", r.count,
			decimal.RequireFromString(r.value), cur, "HKD", r.trace, "outcomes", int32(0), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// rowsOf runs query and returns every row as strings; NULL is "NULL".
func rowsOf(t *testing.T, conn driver.Conn, query string) [][]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	n := len(rows.Columns())
	var out [][]string
	for rows.Next() {
		vals := make([]string, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// expectRows compares rows, treating values that parse as decimals as numbers.
func expectRows(t *testing.T, what string, got [][]string, want ...[]string) {
	t.Helper()
	equal := func(a, b string) bool {
		if a == b {
			return true
		}
		da, e1 := decimal.NewFromString(a)
		db, e2 := decimal.NewFromString(b)
		return e1 == nil && e2 == nil && da.Equal(db)
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = len(got[i]) == len(want[i])
		for j := 0; ok && j < len(got[i]); j++ {
			ok = equal(got[i][j], want[i][j])
		}
	}
	if !ok {
		var g, w strings.Builder
		for _, r := range got {
			fmt.Fprintf(&g, "  %v\n", r)
		}
		for _, r := range want {
			fmt.Fprintf(&w, "  %v\n", r)
		}
		t.Errorf("%s:\ngot\n%swant\n%s", what, g.String(), w.String())
	}
}

func s(cols ...string) string {
	for i, c := range cols {
		cols[i] = "ifNull(toString(" + c + "), 'NULL')"
	}
	return strings.Join(cols, ", ")
}

// TestViews checks every analyst view against values computed by hand from
// a small dataset of tenant acme (HKD, Asia/Hong_Kong, UTC+8):
//
//	e1 support   2026-03-31 15:00Z = 03-31 23:00 HKT  10 HKD  m-a v1 task t1 trace tr1
//	e2 support   2026-03-31 16:30Z = 04-01 00:30 HKT   6 HKD  m-b v2 task t2 trace tr2  <- month AND quarter boundary: April/Q2 in HK, March/Q1 in UTC
//	e3 support   2026-04-15 02:00Z                     6 HKD  m-b v2 task t2 trace tr2  (1200 input, 1000 cached, saved 1.5)
//	e4 support   2026-05-02 03:00Z                     8 HKD  m-b v2 task t3
//	e5 legal     2026-04-10                           20 HKD  (legal has no outcomes)
//	e6 legal     2026-03-10                            5 HKD
//	e7 marketing 2026-04-05                           30 HKD  (over its 25 HKD budget)
//	e9 unattributed 2026-04-20, no team/template       2 HKD
//	e10 support  now                                   1 HKD  (current month: open period)
//	e8 marketing 2026-03-30 10:00Z                     4 HKD  inserted LAST: a late event of March
//	outcomes (support): o1 03-31 x2 worth 25 (trace tr1), o2 04-16 x3 worth 45 (trace tr2), o3 05-03 x2 worth 10
//	outcomes (legal, April): o4 x1 worth 5 USD (= 40 HKD at the month's rate 8), o5 x1 worth 7 EUR (not converted)
func TestViews(t *testing.T) {
	conn, cfg := migrated(t)
	db := cfg.Database
	ctx := context.Background()
	hk, err := time.LoadLocation("Asia/Hong_Kong")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	nowLocal := now.In(hk).Format("2006-01-02")
	curMonth := now.In(hk).Format("2006-01") + "-01"
	if curMonth <= "2026-05-01" {
		t.Skip("the dataset assumes 'now' is after May 2026")
	}
	at := func(s string) time.Time { tt, _ := time.Parse(time.RFC3339, s); return tt }
	insertUsage(t, conn, db, []usage{
		{id: "e1", wf: "support", team: "cx", model: "m-a", prompt: "tpl", version: "v1", task: "t1", trace: "tr1", at: at("2026-03-31T15:00:00Z"), local: "2026-03-31", cost: "10", input: 100},
		{id: "e2", wf: "support", team: "cx", model: "m-b", prompt: "tpl", version: "v2", task: "t2", trace: "tr2", at: at("2026-03-31T16:30:00Z"), local: "2026-04-01", cost: "6", input: 500},
		{id: "e3", wf: "support", team: "cx", model: "m-b", prompt: "tpl", version: "v2", task: "t2", trace: "tr2", at: at("2026-04-15T02:00:00Z"), local: "2026-04-15", cost: "6", input: 1200, cacheRead: 1000, cacheSavings: "1.5"},
		{id: "e4", wf: "support", team: "cx", model: "m-b", prompt: "tpl", version: "v2", task: "t3", at: at("2026-05-02T03:00:00Z"), local: "2026-05-02", cost: "8", input: 100},
		{id: "e5", wf: "legal", team: "legal", model: "m-a", prompt: "tpl", version: "v1", task: "t4", at: at("2026-04-10T03:00:00Z"), local: "2026-04-10", cost: "20", input: 100},
		{id: "e6", wf: "legal", team: "legal", model: "m-a", prompt: "tpl", version: "v1", task: "t5", at: at("2026-03-10T03:00:00Z"), local: "2026-03-10", cost: "5", input: 100},
		{id: "e7", wf: "marketing", team: "growth", model: "m-a", prompt: "tpl", version: "v1", task: "t6", at: at("2026-04-05T03:00:00Z"), local: "2026-04-05", cost: "30", input: 100},
		{id: "e9", wf: "unattributed", team: "", model: "m-a", prompt: "", version: "", task: "t8", at: at("2026-04-20T03:00:00Z"), local: "2026-04-20", cost: "2", input: 100},
		{id: "e10", wf: "support", team: "cx", model: "m-a", prompt: "tpl", version: "v1", task: "t9", at: now, local: nowLocal, cost: "1", input: 100},
	})
	insertOutcomes(t, conn, db, []outcome{
		{id: "o1", wf: "support", trace: "tr1", at: at("2026-03-31T14:00:00Z"), local: "2026-03-31", count: 2, value: "25"},
		{id: "o2", wf: "support", trace: "tr2", at: at("2026-04-16T02:00:00Z"), local: "2026-04-16", count: 3, value: "45"},
		{id: "o3", wf: "support", at: at("2026-05-03T02:00:00Z"), local: "2026-05-03", count: 2, value: "10"},
		// Values in USD are converted at the FX rate of the month's usage (8 in this
		// dataset): 5 USD = 40 HKD. EUR is not converted, only counted.
		{id: "o4", wf: "legal", at: at("2026-04-20T02:00:00Z"), local: "2026-04-20", count: 1, value: "5", currency: "USD"},
		{id: "o5", wf: "legal", at: at("2026-04-21T02:00:00Z"), local: "2026-04-21", count: 1, value: "7", currency: "EUR"},
	})
	// The late event arrives after everything else.
	insertUsage(t, conn, db, []usage{
		{id: "e8", wf: "marketing", team: "growth", model: "m-a", prompt: "tpl", version: "v1", task: "t7", at: at("2026-03-30T10:00:00Z"), local: "2026-03-30", cost: "4", input: 100},
	})
	if err := chx.SyncTenants(ctx, conn, db, []chx.TenantRef{{ID: "acme", TimeZone: hk, ReportingCurrency: "HKD"}}, now); err != nil {
		t.Fatal(err)
	}
	dec := decimal.RequireFromString
	if err := chx.SyncBudgets(ctx, conn, db, []chx.BudgetRef{
		{ID: "b-support", Tenant: "acme", Workflow: "support", Period: "month", Amount: dec("15"), Unit: "currency", Mode: "alert"},
		{ID: "b-marketing", Tenant: "acme", Workflow: "marketing", Period: "month", Amount: dec("25"), Unit: "currency", Mode: "alert"},
		{ID: "b-legal", Tenant: "acme", Workflow: "legal", Period: "month", Amount: dec("100"), Unit: "currency", Mode: "enforce"},
		{ID: "b-all", Tenant: "acme", Period: "month", Amount: dec("70"), Unit: "currency", Mode: "alert"},
		{ID: "bq-support", Tenant: "acme", Workflow: "support", Period: "quarter", Amount: dec("30"), Unit: "currency", Mode: "alert"},
	}, now); err != nil {
		t.Fatal(err)
	}
	fc, err := chx.ParseForecasts(strings.NewReader("tenant,workflow,month,amount,currency\nacme,support,2026-04,10,HKD\nacme,marketing,2026-04,40,HKD\nacme,legal,2026-05,5,HKD\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := chx.ImportForecasts(ctx, conn, db, fc, "test.csv", now); err != nil {
		t.Fatal(err)
	}

	t.Run("cost_per_outcome", func(t *testing.T) {
		// support March: 10 / 2 = 5 (e2 belongs to April in HK); April: (6+6) / 3 = 4; May: 8 / 2 = 4.
		// Q1: 10 / 2 = 5; Q2: (12+8) / (3+2) = 4. legal: none in March -> NULL, April 20 / 2 = 10.
		// marketing (no outcomes at all) March: the late 4.
		got := rowsOf(t, conn, "SELECT "+s("workflow", "period", "period_start", "calls", "spend", "outcomes", "cost_per_outcome")+
			" FROM "+db+".v_cost_per_outcome WHERE period_start < '2026-06-01' ORDER BY workflow, period, period_start")
		expectRows(t, "v_cost_per_outcome", got,
			[]string{"legal", "month", "2026-03-01", "1", "5", "0", "NULL"},
			[]string{"legal", "month", "2026-04-01", "1", "20", "2", "10"},
			[]string{"legal", "quarter", "2026-01-01", "1", "5", "0", "NULL"},
			[]string{"legal", "quarter", "2026-04-01", "1", "20", "2", "10"},
			[]string{"marketing", "month", "2026-03-01", "1", "4", "0", "NULL"},
			[]string{"marketing", "month", "2026-04-01", "1", "30", "0", "NULL"},
			[]string{"marketing", "quarter", "2026-01-01", "1", "4", "0", "NULL"},
			[]string{"marketing", "quarter", "2026-04-01", "1", "30", "0", "NULL"},
			[]string{"support", "month", "2026-03-01", "1", "10", "2", "5"},
			[]string{"support", "month", "2026-04-01", "2", "12", "3", "4"},
			[]string{"support", "month", "2026-05-01", "1", "8", "2", "4"},
			[]string{"support", "quarter", "2026-01-01", "1", "10", "2", "5"},
			[]string{"support", "quarter", "2026-04-01", "3", "20", "5", "4"},
			[]string{"unattributed", "month", "2026-04-01", "1", "2", "0", "NULL"},
			[]string{"unattributed", "quarter", "2026-04-01", "1", "2", "0", "NULL"},
		)
	})
	t.Run("outcome_cost", func(t *testing.T) {
		// o1 -> trace tr1: e1 = 10 for 2 outcomes = 5 each; o2 -> tr2: e2 + e3 = 12 for 3 = 4; o3 names nothing.
		got := rowsOf(t, conn, "SELECT "+s("outcome_id", "link", "calls", "spend", "cost_per_outcome")+" FROM "+db+".v_outcome_cost ORDER BY outcome_id")
		expectRows(t, "v_outcome_cost", got,
			[]string{"o1", "trace:tr1", "1", "10", "5"},
			[]string{"o2", "trace:tr2", "2", "12", "4"},
			[]string{"o3", "", "0", "0", "NULL"},
			[]string{"o4", "", "0", "0", "NULL"},
			[]string{"o5", "", "0", "0", "NULL"},
		)
	})
	t.Run("forecast_variance", func(t *testing.T) {
		// support April 12 vs 10: +2 = +20%; marketing April 30 vs 40: -10 = -25%;
		// legal May 0 vs 5: -5 = -100%; legal April 20 without forecast: pct NULL.
		got := rowsOf(t, conn, "SELECT "+s("workflow", "month", "actual", "forecast", "has_forecast", "variance", "variance_pct")+
			" FROM "+db+".v_forecast_variance WHERE month IN ('2026-04-01', '2026-05-01') ORDER BY workflow, month")
		expectRows(t, "v_forecast_variance", got,
			[]string{"legal", "2026-04-01", "20", "0", "0", "20", "NULL"},
			[]string{"legal", "2026-05-01", "0", "5", "1", "-5", "-100"},
			[]string{"marketing", "2026-04-01", "30", "40", "1", "-10", "-25"},
			[]string{"support", "2026-04-01", "12", "10", "1", "2", "20"},
			[]string{"support", "2026-05-01", "8", "0", "0", "8", "NULL"},
			[]string{"unattributed", "2026-04-01", "2", "0", "0", "2", "NULL"},
		)
	})
	t.Run("workflow_profitability", func(t *testing.T) {
		// support March: value 25 / 2 = 12.5 per outcome, net 25 - 10 = 15, ROI 15 / 10 = 1.5.
		// April: 45 / 3 = 15, net 33, ROI 33 / 12 = 2.75. May: 10 / 2 = 5, net 2, ROI 2 / 8 = 0.25.
		// legal March: no outcomes, net -5, ROI -1. April: 2 outcomes, value 5 USD * 8 = 40 HKD
		// (the EUR one counts as an outcome, its value is not converted): 40 / 2 = 20 per
		// outcome, net 40 - 20 = 20, ROI 20 / 20 = 1, one record in another currency.
		got := rowsOf(t, conn, "SELECT "+s("workflow", "period_start", "spend", "outcome_value", "cost_per_outcome", "value_per_outcome", "net_value", "roi", "value_other_currency_records")+
			" FROM "+db+".v_workflow_profitability WHERE period = 'month' AND workflow IN ('support', 'legal') AND period_start < '2026-06-01' ORDER BY workflow, period_start")
		expectRows(t, "v_workflow_profitability", got,
			[]string{"legal", "2026-03-01", "5", "0", "NULL", "NULL", "-5", "-1", "0"},
			[]string{"legal", "2026-04-01", "20", "40", "10", "20", "20", "1", "1"},
			[]string{"support", "2026-03-01", "10", "25", "5", "12.5", "15", "1.5", "0"},
			[]string{"support", "2026-04-01", "12", "45", "4", "15", "33", "2.75", "0"},
			[]string{"support", "2026-05-01", "8", "10", "4", "5", "2", "0.25", "0"},
		)
	})
	t.Run("optimisation_rate", func(t *testing.T) {
		// support: Q1 5 per outcome, Q2 4: (4 - 5) / 5 = -20%. Q1 has no previous quarter.
		got := rowsOf(t, conn, "SELECT "+s("quarter", "cost_per_outcome", "previous_cost_per_outcome", "change_pct")+
			" FROM "+db+".v_optimisation_rate WHERE workflow = 'support' AND quarter < '2026-07-01' ORDER BY quarter")
		expectRows(t, "v_optimisation_rate", got,
			[]string{"2026-01-01", "5", "NULL", "NULL"},
			[]string{"2026-04-01", "4", "5", "-20"},
		)
	})
	t.Run("budget_compliance", func(t *testing.T) {
		// Months with usage: 2026-03, 04, 05 (closed) and the current month (open).
		// March: support 10 <= 15, marketing 4 (the late event) <= 25, legal 5, all 19 <= 70: 4 of 4.
		// April: support 12, marketing 30 > 25, legal 20, all 64 <= 70: 3 of 4; workflows 2 of 3.
		// May: support 8, others 0: 4 of 4. Current month: support 1: 4 of 4, open.
		got := rowsOf(t, conn, "SELECT "+s("period_start", "status", "budgets", "budgets_within", "share_within", "workflow_budgets", "workflow_budgets_within", "over_budget")+
			" FROM "+db+".v_budget_compliance WHERE period = 'month' ORDER BY period_start")
		expectRows(t, "v_budget_compliance", got,
			[]string{"2026-03-01", "closed", "4", "4", "1", "3", "3", "[]"},
			[]string{"2026-04-01", "closed", "4", "3", "0.75", "3", "2", "['b-marketing']"},
			[]string{"2026-05-01", "closed", "4", "4", "1", "3", "3", "[]"},
			[]string{curMonth, "open", "4", "4", "1", "3", "3", "[]"},
		)
		// marketing April: 30 of 25 = 120%; support April 12 of 15 = 80%.
		got = rowsOf(t, conn, "SELECT "+s("budget_id", "used", "within_budget", "used_pct")+
			" FROM "+db+".v_budget_status WHERE period = 'month' AND period_start = '2026-04-01' ORDER BY budget_id")
		expectRows(t, "v_budget_status April", got,
			[]string{"b-all", "64", "1", "91.428571428571"},
			[]string{"b-legal", "20", "1", "20"},
			[]string{"b-marketing", "30", "0", "120"},
			[]string{"b-support", "12", "1", "80"},
		)
		// The quarterly support budget (30 HKD): Q1 = March's 10 (33.3%); Q2 = April 6 + 6
		// and May 8 = 20 (66.6%), counted once although the tenant has usage in two months
		// of Q2 (the view used to multiply it by that count: 40, over budget); the current
		// quarter holds e10's 1 and is open.
		curQuarter := fmt.Sprintf("%s-%02d-01", now.In(hk).Format("2006"), (int(now.In(hk).Month())-1)/3*3+1)
		got = rowsOf(t, conn, "SELECT "+s("period_start", "used", "within_budget", "used_pct", "status")+
			" FROM "+db+".v_budget_status WHERE budget_id = 'bq-support' ORDER BY period_start")
		expectRows(t, "v_budget_status quarterly", got,
			[]string{"2026-01-01", "10", "1", "33.333333333333", "closed"},
			[]string{"2026-04-01", "20", "1", "66.666666666666", "closed"},
			[]string{curQuarter, "1", "1", "3.333333333333", "open"},
		)
		got = rowsOf(t, conn, "SELECT "+s("period_start", "status", "budgets", "budgets_within", "over_budget")+
			" FROM "+db+".v_budget_compliance WHERE period = 'quarter' ORDER BY period_start")
		expectRows(t, "v_budget_compliance quarterly", got,
			[]string{"2026-01-01", "closed", "1", "1", "[]"},
			[]string{"2026-04-01", "closed", "1", "1", "[]"},
			[]string{curQuarter, "open", "1", "1", "[]"},
		)
	})
	t.Run("spend_by_model_prompt", func(t *testing.T) {
		// support March m-a v1: 1 call, 1 task, 10 -> per call 10; workflow: 1 task, 2 outcomes -> 10 / 2 = 5 per outcome.
		// support April m-b v2: 2 calls, 1 task (t2), 12 -> per call 6, 2 calls per task; 3 outcomes -> 4 per outcome.
		// support May m-b v2: 1 call 8; 2 outcomes -> 4.
		got := rowsOf(t, conn, "SELECT "+s("month", "model", "prompt_version", "calls", "tasks", "spend", "cost_per_call", "calls_per_task", "cost_per_task", "workflow_outcomes", "cost_per_outcome")+
			" FROM "+db+".v_spend_by_model_prompt WHERE workflow = 'support' AND month < '2026-06-01' ORDER BY month, model")
		expectRows(t, "v_spend_by_model_prompt", got,
			[]string{"2026-03-01", "m-a", "v1", "1", "1", "10", "10", "1", "10", "2", "5"},
			[]string{"2026-04-01", "m-b", "v2", "2", "1", "12", "6", "2", "12", "3", "4"},
			[]string{"2026-05-01", "m-b", "v2", "1", "1", "8", "8", "1", "8", "2", "4"},
		)
	})
	t.Run("cache_savings", func(t *testing.T) {
		// support April m-b: input 500 + 1200 = 1700, cached 1000; saved 1.5 of (12 + 1.5):
		// 1.5 * 100 / 13.5 = 11.111111111111 (12 decimals, truncated).
		got := rowsOf(t, conn, "SELECT "+s("input_tokens", "cache_read_input_tokens", "cache_savings", "spend", "savings_pct")+
			" FROM "+db+".v_cache_savings WHERE workflow = 'support' AND month = '2026-04-01'")
		expectRows(t, "v_cache_savings", got, []string{"1700", "1000", "1.5", "12", "11.111111111111"})
	})
	t.Run("focus_usage", func(t *testing.T) {
		// All ten calls: 10+6+6+8+20+5+30+2+1+4 = 92 HKD billed. e1: 100 input + 10 output = 110 tokens,
		// charged in the billing period of March (local date 03-31).
		got := rowsOf(t, conn, "SELECT "+s("count()", "sum(BilledCost)", "any(BillingCurrency)")+" FROM "+db+".v_focus_usage")
		expectRows(t, "v_focus_usage totals", got, []string{"10", "92", "HKD"})
		got = rowsOf(t, conn, "SELECT "+s("BillingPeriodStart", "ConsumedQuantity", "ConsumedUnit", "BilledCost", "x_Workflow", "x_PromptVersion")+" FROM "+db+".v_focus_usage WHERE x_EventId = 'e1'")
		expectRows(t, "v_focus_usage e1", got, []string{"2026-03-01", "110", "Tokens", "10", "support", "v1"})
	})
	t.Run("unattributed_share", func(t *testing.T) {
		// April: 12 + 20 + 30 + 2 = 64 HKD, of which e9's 2 has no workflow, team or template: 2 / 64 = 3.125%.
		// March: 10 + 5 + 4 = 19, nothing unattributed.
		got := rowsOf(t, conn, "SELECT "+s("month", "spend", "unattributed_workflow_spend", "unattributed_workflow_pct", "unattributed_team_pct", "unattributed_prompt_pct")+
			" FROM "+db+".v_unattributed_share WHERE month IN ('2026-03-01', '2026-04-01') ORDER BY month")
		expectRows(t, "v_unattributed_share", got,
			[]string{"2026-03-01", "19", "0", "0", "0", "0"},
			[]string{"2026-04-01", "64", "2", "3.125", "3.125", "3.125"},
		)
	})
}

// An outcome value in USD is converted to the billing currency at the
// month's FX rate and rounded half-even once at the money scale, as the
// processor rounds billed amounts: 1.5 USD at 0.333333333333 is
// 0.4999999999995, stored as 0.5 (truncating would give 0.499999999999).
func TestOutcomeValueConversionRoundsHalfEvenOnce(t *testing.T) {
	conn, cfg := migrated(t)
	db := cfg.Database
	at := time.Date(2026, 6, 10, 2, 0, 0, 0, time.UTC)
	insertUsage(t, conn, db, []usage{{id: "u1", wf: "support", model: "m-a", at: at, local: "2026-06-10", cost: "3", fx: "0.333333333333"}})
	insertOutcomes(t, conn, db, []outcome{{id: "o1", wf: "support", at: at, local: "2026-06-10", count: 1, value: "1.5", currency: "USD"}})
	got := rowsOf(t, conn, "SELECT "+s("outcomes", "outcome_value", "value_other_currency_records")+" FROM "+db+".v_outcome_value_monthly")
	expectRows(t, "v_outcome_value_monthly", got, []string{"1", "0.5", "0"})
}

// Every stored amount has the one money type (chschema.MoneyScale), in
// every table and rollup.
func TestMoneyColumnsHaveTheMoneyType(t *testing.T) {
	conn, cfg := migrated(t)
	got := rowsOf(t, conn, "SELECT table, name, type FROM system.columns WHERE database = '"+cfg.Database+"' AND type LIKE '%Decimal%' AND table NOT LIKE 'v\\_%' ORDER BY table, name")
	if len(got) < 40 {
		t.Fatalf("only %d Decimal columns", len(got))
	}
	for _, c := range got {
		if !strings.Contains(c[2], chx.MoneyType) || strings.Count(c[2], "Decimal") != 1 {
			t.Errorf("%s.%s is %s, want %s", c[0], c[1], c[2], chx.MoneyType)
		}
	}
}
