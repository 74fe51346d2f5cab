package report

import (
	"context"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/levers"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/forecast"
	"github.com/tokenmeter/tokenmeter/internal/reconcile"
)

// Source is where a pack's facts are read: the documented views of
// database DB (docs/clickhouse.md, docs/forecast.md).
type Source struct {
	Conn driver.Conn
	DB   string
}

// LoadOptions say whose pack to load.
type LoadOptions struct {
	Tenant, Currency, TimeZone string
	Period                     Period
	Now                        time.Time
	// Plan reconciles against the envelope; nil: the approved version's plan
	// (forecast_versions), else no reconciliation.
	Plan *forecast.Plan
	// Engine prices the plan (the pipeline's pricing engine); required with a plan.
	Engine forecast.Pricer
	// Levers, when set, adds the top savings per lever (internal/levers)
	// found in the period's calls.
	Levers *LeversOptions
}

// LeversOptions are what the levers page needs: the pricing engine for the
// routing and long-context what-ifs and the models to re-price on.
type LeversOptions struct {
	Engine     *pricing.Engine
	Candidates []levers.Candidate
}

// Load reads every fact of the standard pages.
func Load(ctx context.Context, src Source, o LoadOptions) (*Data, error) {
	loc, err := time.LoadLocation(o.TimeZone)
	if err != nil {
		return nil, err
	}
	d := &Data{Tenant: o.Tenant, Currency: o.Currency, TimeZone: o.TimeZone, Period: o.Period, Now: o.Now,
		Sources: "ClickHouse " + src.DB + ": v_workflow_period, v_cost_per_outcome, v_workflow_profitability, v_forecast_variance, v_optimisation_rate, v_budget_compliance, v_cache_savings, v_unattributed_share, v_usage_model_month, alerts, dlq"}
	y := o.Period.Year
	for m := 1; m <= 12; m++ {
		d.Months[m].Month = m
		end := time.Date(y, time.Month(m)+1, 1, 0, 0, 0, 0, loc)
		d.Months[m].Closed = !end.After(o.Now)
	}
	db := src.DB
	q := func(what, sql string, args []any, scan func(driver.Rows) error) error {
		rows, err := src.Conn.Query(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("board pack: %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return fmt.Errorf("board pack: %s: %w", what, err)
			}
		}
		return rows.Err()
	}
	ta := []any{o.Tenant, uint16(y)}

	// Workflows per month: spend, calls, outcomes, value, cost per outcome.
	wfIdx := map[string]int{}
	wf := func(name string) *WorkflowFacts {
		i, ok := wfIdx[name]
		if !ok {
			i = len(d.Workflows)
			wfIdx[name] = i
			d.Workflows = append(d.Workflows, WorkflowFacts{Name: name})
		}
		return &d.Workflows[i]
	}
	if err := q("v_cost_per_outcome", "SELECT workflow, toMonth(period_start), calls, spend, outcomes, cost_per_outcome FROM "+db+
		".v_cost_per_outcome WHERE tenant = ? AND period = 'month' AND toYear(period_start) = ? ORDER BY workflow, period_start", ta, func(r driver.Rows) error {
		var name string
		var m uint8
		var calls, outcomes uint64
		var spend decimal.Decimal
		var cpo *decimal.Decimal
		if err := r.Scan(&name, &m, &calls, &spend, &outcomes, &cpo); err != nil {
			return err
		}
		w := &wf(name).Months[m]
		w.Calls = int64(calls)
		if calls > 0 {
			w.Spend = V(spend)
			mf := &d.Months[m]
			mf.HasUsage, mf.Calls = true, mf.Calls+int64(calls)
			mf.Spend = V(mf.Spend.D.Add(spend))
		}
		if outcomes > 0 {
			w.Outcomes = V(decimal.NewFromUint64(outcomes))
		}
		if cpo != nil {
			w.CostPerOutcome = V(*cpo)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := q("v_workflow_profitability", "SELECT workflow, toMonth(period_start), outcome_value FROM "+db+
		".v_workflow_profitability WHERE tenant = ? AND period = 'month' AND toYear(period_start) = ? AND outcome_value != 0", ta, func(r driver.Rows) error {
		var name string
		var m uint8
		var val decimal.Decimal
		if err := r.Scan(&name, &m, &val); err != nil {
			return err
		}
		wf(name).Months[m].OutcomeValue = V(val)
		return nil
	}); err != nil {
		return nil, err
	}
	// Forecast (the version in force writes `forecasts`; v_forecast_variance reads it).
	if err := q("v_forecast_variance", "SELECT workflow, toMonth(month), forecast FROM "+db+
		".v_forecast_variance WHERE tenant = ? AND toYear(month) = ? AND has_forecast = 1", ta, func(r driver.Rows) error {
		var name string
		var m uint8
		var f decimal.Decimal
		if err := r.Scan(&name, &m, &f); err != nil {
			return err
		}
		mf := &d.Months[m]
		mf.Forecast = V(mf.Forecast.D.Add(f))
		if i, ok := wfIdx[name]; ok {
			d.Workflows[i].Months[m].Forecast = V(f)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := q("v_optimisation_rate", "SELECT workflow, toQuarter(quarter), cost_per_outcome, previous_cost_per_outcome, change_pct FROM "+db+
		".v_optimisation_rate WHERE tenant = ? AND toYear(quarter) = ? ORDER BY workflow, quarter", ta, func(r driver.Rows) error {
		var qr QuarterRate
		var qn uint8
		var cpo, prev, ch *decimal.Decimal
		if err := r.Scan(&qr.Workflow, &qn, &cpo, &prev, &ch); err != nil {
			return err
		}
		qr.Quarter = fmt.Sprintf("%04d-Q%d", y, qn)
		qr.CostPerOutcome, qr.Previous, qr.Change = opt(cpo), opt(prev), opt(ch)
		d.Optimisation = append(d.Optimisation, qr)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := q("v_budget_compliance", "SELECT toMonth(period_start), status, budgets, budgets_within, over_budget FROM "+db+
		".v_budget_compliance WHERE tenant = ? AND period = 'month' AND toYear(period_start) = ? ORDER BY period_start", ta, func(r driver.Rows) error {
		var c ComplianceFacts
		var m uint8
		var b, w uint64
		if err := r.Scan(&m, &c.Status, &b, &w, &c.OverBudgetIDs); err != nil {
			return err
		}
		c.Month, c.Budgets, c.Within = int(m), int64(b), int64(w)
		if b > 0 {
			c.Share = V(decimal.NewFromUint64(w).DivRound(decimal.NewFromUint64(b), 6))
		}
		d.Compliance = append(d.Compliance, c)
		return nil
	}); err != nil {
		return nil, err
	}
	from := time.Date(y, time.Month(o.Period.FirstMonth), 1, 0, 0, 0, 0, loc)
	to := time.Date(y, time.Month(o.Period.LastMonth)+1, 1, 0, 0, 0, 0, loc)
	if err := q("alerts", "SELECT triggered_at, budget_id, kind, period, threshold, spend, amount, currency FROM "+db+
		".alerts WHERE tenant = ? AND triggered_at >= ? AND triggered_at < ? ORDER BY triggered_at, budget_id LIMIT 1 BY alert_id", []any{o.Tenant, from.UTC(), to.UTC()}, func(r driver.Rows) error {
		var a AlertFacts
		var period, cur string
		var th, spend, amount decimal.Decimal
		if err := r.Scan(&a.Time, &a.BudgetID, &a.Kind, &period, &th, &spend, &amount, &cur); err != nil {
			return err
		}
		a.Scope = period
		a.Detail = fmt.Sprintf("spent %s %s of %s (threshold %s%%)", cur, Money(spend), Money(amount), th.Round(1).String())
		if a.Kind != "threshold" {
			a.Detail = fmt.Sprintf("spent %s %s of %s", cur, Money(spend), Money(amount))
		}
		d.Alerts = append(d.Alerts, a)
		return nil
	}); err != nil {
		return nil, err
	}
	cache := map[int]decimal.Decimal{}
	if err := q("v_cache_savings", "SELECT toMonth(month), sum(cache_savings) FROM "+db+
		".v_cache_savings WHERE tenant = ? AND toYear(month) = ? GROUP BY month", ta, func(r driver.Rows) error {
		var m uint8
		var s decimal.Decimal
		if err := r.Scan(&m, &s); err != nil {
			return err
		}
		cache[int(m)] = s
		return nil
	}); err != nil {
		return nil, err
	}
	unattr := map[int]*decimal.Decimal{}
	if err := q("v_unattributed_share", "SELECT toMonth(month), unattributed_workflow_pct FROM "+db+
		".v_unattributed_share WHERE tenant = ? AND toYear(month) = ?", ta, func(r driver.Rows) error {
		var m uint8
		var p *decimal.Decimal
		if err := r.Scan(&m, &p); err != nil {
			return err
		}
		unattr[int(m)] = p
		return nil
	}); err != nil {
		return nil, err
	}
	for m := o.Period.FirstMonth; m <= o.Period.LastMonth; m++ {
		d.Quality.Unattributed = append(d.Quality.Unattributed, opt(unattr[m]))
		d.Quality.Events += d.Months[m].Calls
	}
	if err := q("dlq", "SELECT reason, count() FROM "+db+
		".dlq WHERE tenant = ? AND rejected_at >= ? AND rejected_at < ? GROUP BY reason ORDER BY count() DESC, reason", []any{o.Tenant, from.UTC(), to.UTC()}, func(r driver.Rows) error {
		var rc ReasonCount
		var n uint64
		if err := r.Scan(&rc.Reason, &n); err != nil {
			return err
		}
		rc.Count = int64(n)
		d.Quality.DLQ = append(d.Quality.DLQ, rc)
		return nil
	}); err != nil {
		return nil, err
	}

	// Two plans may be in play: the period year's (the version in force, or
	// a given plan of that year) gives the envelope, the projection and the
	// bridge; the reconciliation page shows the given plan (any year: next
	// year's budget round), else the period year's.
	ver, err := forecast.Current(ctx, src.Conn, db, o.Tenant, y)
	if err != nil {
		return nil, err
	}
	if ver != nil {
		d.Forecast = &VersionFacts{ID: ver.ID, Scenario: ver.Scenario, ApprovedBy: ver.ApprovedBy, ApprovedAt: ver.ApprovedAt}
	}
	var yearPlan *forecast.Plan
	switch {
	case o.Plan != nil && o.Plan.Year == y:
		yearPlan = o.Plan
	case ver != nil:
		yearPlan = ver.Plan
	}
	usage, err := reconcile.Actuals(ctx, src.Conn, db, o.Tenant, y)
	if err != nil {
		return nil, err
	}
	for m := o.Period.FirstMonth; m <= o.Period.LastMonth; m++ {
		s := SavingsFacts{Month: m}
		if c, ok := cache[m]; ok {
			s.Cache = V(c)
		}
		d.Savings = append(d.Savings, s)
	}
	if o.Engine == nil {
		return d, nil
	}
	first := reconcile.FirstOpen(y, loc, o.Now)
	if yearPlan != nil {
		if yearPlan.Envelope != nil {
			env := reconcile.Phase(yearPlan)
			for m := 1; m <= 12; m++ {
				d.Months[m].Envelope = V(env[m])
			}
		}
		// Options act from the first open month; closed months are actual.
		rep, err := reconcile.Run(yearPlan, o.Engine, reconcile.ClosedConfig(usage, first))
		if err != nil {
			return nil, fmt.Errorf("board pack: reconcile: %w", err)
		}
		d.Reforecast = V(rep.BottomUp)
		if yearPlan.Envelope != nil {
			d.Reconciliation = rep
		}
		base, err := forecast.Build(yearPlan, o.Engine, forecast.Options{})
		if err != nil {
			return nil, err
		}
		d.Savings = routingSavings(d, yearPlan, o.Engine, base, usage)
	}
	if ver != nil {
		vbase, err := forecast.Build(ver.Plan, o.Engine, forecast.Options{})
		if err != nil {
			return nil, err
		}
		if d.Bridge, err = reconcile.Bridge(ver.Plan, o.Engine, vbase, reconcile.ClosedOnly(usage, first)); err != nil {
			return nil, err
		}
	}
	if o.Plan != nil && o.Plan.Year != y && o.Plan.Envelope != nil {
		acts, err := reconcile.Actuals(ctx, src.Conn, db, o.Tenant, o.Plan.Year)
		if err != nil {
			return nil, err
		}
		from := reconcile.FirstOpen(o.Plan.Year, o.Plan.Location(), o.Now)
		if d.Reconciliation, err = reconcile.Run(o.Plan, o.Engine, reconcile.ClosedConfig(acts, from)); err != nil {
			return nil, fmt.Errorf("board pack: reconcile %d: %w", o.Plan.Year, err)
		}
	}
	if o.Levers != nil {
		from := time.Date(y, time.Month(o.Period.FirstMonth), 1, 0, 0, 0, 0, loc)
		to := time.Date(y, time.Month(o.Period.LastMonth)+1, 1, 0, 0, 0, 0, loc)
		ls := levers.Source{Conn: src.Conn, DB: db}
		top, err := ls.TopSavings(ctx, o.Levers.Engine, levers.Filter{Tenant: o.Tenant, From: from, To: to}, o.Levers.Candidates)
		if err != nil {
			return nil, fmt.Errorf("board pack: levers: %w", err)
		}
		d.Levers = &top
		d.Sources += ", levers (v_prompt_versions, v_cache_absent, v_cache_efficiency, priced_usage re-priced)"
	}
	return d, nil
}

func opt(p *decimal.Decimal) Value {
	if p == nil {
		return Value{}
	}
	return V(*p)
}

// routingSavings prices each workflow's calls on models other than its main
// planned model (the largest share of the plan's mix that month) at the main
// model's rates, with the plan's FX: saving = (main-model cost of the actual
// tokens − actual cost) × planning FX.
func routingSavings(d *Data, p *forecast.Plan, eng forecast.Pricer, base *forecast.Result, usage []reconcile.Actual) []SavingsFacts {
	out := d.Savings
	for i := range out {
		m := out[i].Month
		total, any := decimal.Zero, false
		for _, a := range usage {
			if int(a.Month) != m {
				continue
			}
			w := p.Workflow(a.Workflow)
			if w == nil {
				continue
			}
			main := mainModel(base, a.Workflow, a.Month)
			if main == "" || strings.EqualFold(main, a.Model) || a.Calls == 0 {
				continue
			}
			shape := a.Tokens.Mul(decimal.NewFromInt(1).Div(decimal.NewFromInt(a.Calls)))
			r, fx, err := forecast.RatesFor(p, eng, main, w.ServiceTier, a.Month, shape)
			if err != nil {
				continue
			}
			total = total.Add(r.PerCall(a.Tokens).Sub(a.CostPricing).Mul(fx))
			any = true
		}
		if any {
			out[i].Routing = V(total)
		} else if len(p.Workflows) > 0 {
			out[i].Routing = V(decimal.Zero)
		}
	}
	return out
}

func mainModel(base *forecast.Result, wf string, m forecast.Month) string {
	best, bestCalls := "", decimal.Zero
	for _, l := range base.Lines {
		if l.Workflow == wf && l.Month == m && l.Calls.GreaterThan(bestCalls) {
			best, bestCalls = l.Model, l.Calls
		}
	}
	return best
}
