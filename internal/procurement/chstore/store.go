// Package chstore reads the procurement views (schemas/clickhouse/
// 016_procurement.sql) into the procurement packages' inputs and writes
// their results back: reconciliation runs, correction rows and FOCUS
// contract commitments.
package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/procurement"
	"github.com/tokenmeter/tokenmeter/internal/procurement/bill"
	"github.com/tokenmeter/tokenmeter/internal/procurement/chargeback"
	"github.com/tokenmeter/tokenmeter/internal/procurement/commit"
)

// Store is one database.
type Store struct {
	Conn driver.Conn
	DB   string
}

// Usage implements procurement.UsageSource from v_procurement_usage_monthly.
func (s Store) Usage(ctx context.Context, tenant, provider string, months []string) ([]procurement.Usage, error) {
	rows, err := s.Conn.Query(ctx, `SELECT period, tenant, provider, model, tier, long_context, requests, input_tokens,
cache_read_input_tokens, cache_write_input_tokens, cache_write_1h_input_tokens, output_tokens, reasoning_tokens
FROM `+s.DB+`.v_procurement_usage_monthly WHERE tenant = ? AND provider = ? AND period IN ? ORDER BY period, model, tier, long_context`,
		tenant, provider, months)
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	defer rows.Close()
	var out []procurement.Usage
	for rows.Next() {
		var u procurement.Usage
		var req, in, cr, cw, cw1, o, r uint64
		if err := rows.Scan(&u.Period, &u.Tenant, &u.Provider, &u.Model, &u.Tier, &u.LongContext, &req, &in, &cr, &cw, &cw1, &o, &r); err != nil {
			return nil, err
		}
		u.Requests, u.InputTokens, u.CacheReadInputTokens, u.CacheWriteInputTokens = int64(req), int64(in), int64(cr), int64(cw)
		u.CacheWrite1hInputTokens, u.OutputTokens, u.ReasoningTokens = int64(cw1), int64(o), int64(r)
		out = append(out, u)
	}
	return out, rows.Err()
}

// Metered reads v_bill_metered_hourly for [from, to).
func (s Store) Metered(ctx context.Context, from, to time.Time) ([]bill.Metered, error) {
	rows, err := s.Conn.Query(ctx, `SELECT hour, provider, project, model, class, tokens, toDecimal128(cost, 12),
pricing_currency, toString(billed_cost), billing_currency, fx_rate
FROM `+s.DB+`.v_bill_metered_hourly WHERE hour >= ? AND hour < ? ORDER BY hour, provider, project, model, class`, from, to)
	if err != nil {
		return nil, fmt.Errorf("metered: %w", err)
	}
	defer rows.Close()
	var out []bill.Metered
	for rows.Next() {
		var m bill.Metered
		var tokens uint64
		var billed string
		if err := rows.Scan(&m.Hour, &m.Provider, &m.Project, &m.Model, &m.Class, &tokens, &m.Cost, &m.PricingCurrency, &billed,
			&m.BillingCurrency, &m.FXRate); err != nil {
			return nil, err
		}
		m.Tokens = int64(tokens)
		if m.BilledCost, err = decimal.NewFromString(billed); err != nil {
			return nil, fmt.Errorf("billed_cost %q: %w", billed, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Evidence reads v_bill_evidence_hourly for [from, to).
func (s Store) Evidence(ctx context.Context, from, to time.Time) (bill.Evidence, error) {
	var ev bill.Evidence
	rows, err := s.Conn.Query(ctx, `SELECT kind, hour, provider, project, model, events, amount
FROM `+s.DB+`.v_bill_evidence_hourly WHERE hour >= ? AND hour < ?`, from, to)
	if err != nil {
		return ev, fmt.Errorf("evidence: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var k bill.Known
		var n uint64
		if err := rows.Scan(&kind, &k.Hour, &k.Provider, &k.Project, &k.Model, &n, &k.Amount); err != nil {
			return ev, err
		}
		k.Events = int64(n)
		if kind == "dlq" {
			ev.DLQ = append(ev.DLQ, k)
		} else {
			ev.Incomplete = append(ev.Incomplete, k)
		}
	}
	return ev, rows.Err()
}

// DrawDown applies v_commitment_spend_daily up to (not including) the day
// of until to the ledger.
func (s Store) DrawDown(ctx context.Context, l *commit.Ledger, until time.Time) error {
	rows, err := s.Conn.Query(ctx, `SELECT day, tenant, provider, model, tier, pricing_currency, cost
FROM `+s.DB+`.v_commitment_spend_daily WHERE day <= ?`, until.UTC())
	if err != nil {
		return fmt.Errorf("spend: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var day time.Time
		var tenant, provider, model, tier, cur string
		var cost decimal.Decimal
		if err := rows.Scan(&day, &tenant, &provider, &model, &tier, &cur, &cost); err != nil {
			return err
		}
		l.ApplyCost(tenant, provider, model, tier, day, cur, cost)
	}
	return rows.Err()
}

// WriteReconciliation stores one run's results.
func (s Store) WriteReconciliation(ctx context.Context, rs []bill.Result, runAt time.Time) error {
	b, err := s.Conn.PrepareBatch(ctx, "INSERT INTO "+s.DB+`.bill_reconciliation (day, provider, project, model, currency, metered,
billed, difference, causes, cause_amounts, residual, problem, run_at)`)
	if err != nil {
		return err
	}
	for _, r := range rs {
		day, _ := time.Parse(time.DateOnly, r.Day)
		var causes []string
		var amounts []decimal.Decimal
		for _, e := range r.Explained {
			causes, amounts = append(causes, e.Cause), append(amounts, e.Amount)
		}
		if err := b.Append(day, r.Provider, r.Project, r.Model, r.Currency, r.Metered, r.Billed, r.Difference, causes, amounts,
			r.Residual, r.Problem, runAt); err != nil {
			return err
		}
	}
	return b.Send()
}

// Originals reads a closed period's daily charges as reported, with the
// usage summed per day and key, for re-pricing.
type Original struct {
	Charge bill.Charge
	Usage  procurement.Usage // Period holds the day (YYYY-MM-DD)
}

// Originals reads [from, to) from priced_usage.
func (s Store) Originals(ctx context.Context, tenant string, from, to time.Time) ([]Original, error) {
	rows, err := s.Conn.Query(ctx, `SELECT toDate(event_time) AS day, CAST(provider AS String), CAST(model AS String),
CAST(pricing_tier AS String), any(CAST(price_id AS String)), sum(list_cost), sum(contracted_cost), sum(effective_cost), count(),
sum(input_tokens), sum(cache_read_input_tokens), sum(cache_write_input_tokens), sum(cache_write_1h_input_tokens),
sum(output_tokens), sum(reasoning_tokens)
FROM `+s.DB+`.priced_usage WHERE tenant = ? AND event_time >= ? AND event_time < ?
GROUP BY day, provider, model, pricing_tier ORDER BY day, provider, model, pricing_tier`, tenant, from, to)
	if err != nil {
		return nil, fmt.Errorf("originals: %w", err)
	}
	defer rows.Close()
	var out []Original
	for rows.Next() {
		var o Original
		var day time.Time
		var n, in, cr, cw, cw1, ou, re uint64
		c := &o.Charge
		if err := rows.Scan(&day, &c.Provider, &c.Model, &c.PricingTier, &c.PriceID, &c.ListCost, &c.ContractedCost, &c.EffectiveCost,
			&n, &in, &cr, &cw, &cw1, &ou, &re); err != nil {
			return nil, err
		}
		c.Day, c.Tenant = day.Format(time.DateOnly), tenant
		o.Usage = procurement.Usage{Period: c.Day, Tenant: tenant, Provider: c.Provider, Model: c.Model, Requests: int64(n),
			InputTokens: int64(in), CacheReadInputTokens: int64(cr), CacheWriteInputTokens: int64(cw), CacheWrite1hInputTokens: int64(cw1),
			OutputTokens: int64(ou), ReasoningTokens: int64(re)}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Reprice prices each original's usage with eng at the start of its day, at
// the tier it was billed at (long context kept), and returns the corrections.
func Reprice(eng *pricing.Engine, originals []Original) ([]bill.Charge, error) {
	var before, after []bill.Charge
	for _, o := range originals {
		tier := o.Charge.PricingTier
		long := len(tier) > len(pricing.LongContextSuffix) && tier[len(tier)-len(pricing.LongContextSuffix):] == pricing.LongContextSuffix
		if long {
			tier = tier[:len(tier)-len(pricing.LongContextSuffix)]
		}
		day, err := time.Parse(time.DateOnly, o.Charge.Day)
		if err != nil {
			return nil, err
		}
		u := o.Usage
		ev := event.UsageEvent{EventID: "reprice", EventTime: day, Tenant: u.Tenant, Provider: u.Provider, Model: u.Model, ServiceTier: tier,
			InputTokens: u.InputTokens, CacheReadInputTokens: u.CacheReadInputTokens, CacheWriteInputTokens: u.CacheWriteInputTokens,
			CacheWrite1hInputTokens: u.CacheWrite1hInputTokens, OutputTokens: u.OutputTokens, ReasoningTokens: u.ReasoningTokens}
		out := event.PricedUsageEvent{UsageEvent: ev}
		if err := eng.PriceAggregate(&ev, long, "", &out); err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", o.Charge.Day, u.Provider, u.Model, err)
		}
		before = append(before, o.Charge)
		a := o.Charge
		a.PriceID, a.ListCost, a.ContractedCost, a.EffectiveCost = out.PriceID, out.ListCost.Decimal(), out.ContractedCost.Decimal(), out.EffectiveCost.Decimal()
		after = append(after, a)
	}
	return bill.Corrections(before, after), nil
}

// WriteCorrections appends correction rows; the originals stay as they are.
func (s Store) WriteCorrections(ctx context.Context, cs []bill.Charge, currency string, at time.Time) error {
	b, err := s.Conn.PrepareBatch(ctx, "INSERT INTO "+s.DB+`.usage_corrections (day, tenant, provider, model, pricing_tier, price_id,
pricing_currency, list_cost, contracted_cost, effective_cost, charge_class, corrected_at)`)
	if err != nil {
		return err
	}
	for _, c := range cs {
		day, _ := time.Parse(time.DateOnly, c.Day)
		if err := b.Append(day, c.Tenant, c.Provider, c.Model, c.PricingTier, c.PriceID, currency, c.ListCost, c.ContractedCost,
			c.EffectiveCost, c.ChargeClass, at); err != nil {
			return err
		}
	}
	return b.Send()
}

// WriteCommitments stores the FOCUS Contract Commitment rows of f.
func (s Store) WriteCommitments(ctx context.Context, f *commit.File, at time.Time) error {
	b, err := s.Conn.PrepareBatch(ctx, "INSERT INTO "+s.DB+`.contract_commitments (BillingCurrency, ContractCommitmentCost,
ContractCommitmentId, ContractCommitmentCategory, ContractCommitmentDescription, ContractCommitmentPeriodEnd,
ContractCommitmentPeriodStart, ContractCommitmentQuantity, ContractCommitmentType, ContractCommitmentUnit, ContractId,
ContractPeriodEnd, ContractPeriodStart, written_at)`)
	if err != nil {
		return err
	}
	for _, r := range f.FOCUS() {
		if err := b.Append(r.BillingCurrency, r.ContractCommitmentCost, r.ContractCommitmentID, r.ContractCommitmentCategory,
			r.ContractCommitmentDescription, r.ContractCommitmentPeriodEnd, r.ContractCommitmentPeriodStart, nil,
			r.ContractCommitmentType, nil, r.ContractID, r.ContractPeriodEnd, r.ContractPeriodStart, at); err != nil {
			return err
		}
	}
	return b.Send()
}

// ChargebackInputs reads a tenant's month from v_chargeback_spend_monthly
// and v_chargeback_drivers_monthly; spend in another currency than currency
// is an error (a statement is in one currency).
func (s Store) ChargebackInputs(ctx context.Context, tenant, month, currency string) ([]chargeback.Spend, []chargeback.Driver, error) {
	rows, err := s.Conn.Query(ctx, `SELECT cost_centre, workflow, provider, model, currency, cost
FROM `+s.DB+`.v_chargeback_spend_monthly WHERE tenant = ? AND month = ? ORDER BY workflow, provider, model, cost_centre`, tenant, month)
	if err != nil {
		return nil, nil, fmt.Errorf("chargeback spend: %w", err)
	}
	defer rows.Close()
	var spend []chargeback.Spend
	for rows.Next() {
		sp := chargeback.Spend{Month: month}
		var cur string
		if err := rows.Scan(&sp.CostCentre, &sp.Workflow, &sp.Provider, &sp.Model, &cur, &sp.Cost); err != nil {
			return nil, nil, err
		}
		if cur != currency {
			return nil, nil, fmt.Errorf("spend of %s/%s is in %s, the rules' currency is %s", sp.Workflow, sp.Model, cur, currency)
		}
		spend = append(spend, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	drows, err := s.Conn.Query(ctx, `SELECT workflow, cost_centre, calls, outcomes
FROM `+s.DB+`.v_chargeback_drivers_monthly WHERE tenant = ? AND month = ?`, tenant, month)
	if err != nil {
		return nil, nil, fmt.Errorf("chargeback drivers: %w", err)
	}
	defer drows.Close()
	var drivers []chargeback.Driver
	for drows.Next() {
		d := chargeback.Driver{Month: month}
		var calls, outcomes uint64
		if err := drows.Scan(&d.Workflow, &d.CostCentre, &calls, &outcomes); err != nil {
			return nil, nil, err
		}
		d.Calls, d.Outcomes = int64(calls), int64(outcomes)
		drivers = append(drivers, d)
	}
	return spend, drivers, drows.Err()
}
