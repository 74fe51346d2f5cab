package levers

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/exact"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// Source reads the levers' inputs from ClickHouse through the documented
// views and the raw priced_usage table (database DB).
type Source struct {
	Conn driver.Conn
	DB   string
}

// Filter selects the calls an analysis looks at: one tenant, a period
// [From, To) of event time, and optionally one attribution column's value.
type Filter struct {
	Tenant   string
	From, To time.Time
	Column   string // one of FilterColumns, or "" for every call
	Value    string
}

// FilterColumns are the priced_usage columns a Filter may name.
var FilterColumns = []string{"workflow", "prompt_template", "prompt_version", "team", "user_id", "application",
	"environment", "agent_name", "provider", "model", "operation", "cost_centre"}

// Validate checks the filter.
func (f Filter) Validate() error {
	var errs []string
	if f.Tenant == "" {
		errs = append(errs, "tenant: required")
	}
	if f.From.IsZero() || f.To.IsZero() || !f.From.Before(f.To) {
		errs = append(errs, "period: from must be before to")
	}
	if f.Column != "" {
		ok := false
		for _, c := range FilterColumns {
			ok = ok || c == f.Column
		}
		if !ok {
			errs = append(errs, fmt.Sprintf("filter: column %q is not one of %s", f.Column, strings.Join(FilterColumns, ", ")))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (f Filter) where() (string, []any) {
	w := "tenant = ? AND event_time >= ? AND event_time < ?"
	args := []any{f.Tenant, f.From.UTC(), f.To.UTC()}
	if f.Column != "" {
		// The column name comes from FilterColumns (Validate), never from input.
		w += " AND " + f.Column + " = ?"
		args = append(args, f.Value)
	}
	return w, args
}

// Groups reads the calls matching f summed per hour, service tier, billing
// currency and side of a long-context threshold (input_tokens > threshold;
// 0 = no such tier, every call on the short side), ready for Reprice.
// extra narrows further (a SQL condition on priced_usage with no input in it).
func (s Source) Groups(ctx context.Context, f Filter, threshold int64, extra string) ([]UsageGroup, error) {
	where, args := f.where()
	if extra != "" {
		where += " AND (" + extra + ")"
	}
	long := "0"
	if threshold > 0 {
		long = fmt.Sprintf("input_tokens > %d", threshold)
	}
	q := fmt.Sprintf(`SELECT toStartOfHour(event_time) AS at, tenant, service_tier, %s AS long, billing_currency,
	count(), sum(input_tokens), sum(cache_read_input_tokens), sum(cache_write_input_tokens), sum(cache_write_1h_input_tokens),
	sum(output_tokens), sum(reasoning_tokens), sum(images), sum(audio_seconds), sum(requests), sum(tool_calls), sum(web_searches),
	sum(billed_effective_cost)
FROM %s.priced_usage WHERE %s
GROUP BY at, tenant, service_tier, long, billing_currency ORDER BY at, service_tier, long`, long, s.DB, where)
	rows, err := s.Conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("levers: usage groups: %w", err)
	}
	defer rows.Close()
	var out []UsageGroup
	for rows.Next() {
		var g UsageGroup
		var isLong uint8
		var at time.Time
		var n, in, cr, cw, cw1, o, r, img, aud, req, tc, ws uint64
		if err := rows.Scan(&at, &g.Tenant, &g.ServiceTier, &isLong, &g.BillingCurrency, &n, &in, &cr, &cw, &cw1, &o, &r,
			&img, &aud, &req, &tc, &ws, &g.Actual); err != nil {
			return nil, fmt.Errorf("levers: usage groups: %w", err)
		}
		g.At, g.Long = at.UTC(), isLong == 1
		g.Calls, g.InputTokens, g.CacheReadTokens, g.CacheWriteTokens, g.CacheWrite1hTokens = int64(n), int64(in), int64(cr), int64(cw), int64(cw1)
		g.OutputTokens, g.ReasoningTokens, g.Images, g.AudioSeconds = int64(o), int64(r), int64(img), int64(aud)
		g.Requests, g.ToolCalls, g.WebSearches = int64(req), int64(tc), int64(ws)
		out = append(out, g)
	}
	return out, rows.Err()
}

// Outcomes sums the outcomes of the filter's workflow (or the tenant's, when
// the filter is not on a workflow) in the period.
func (s Source) Outcomes(ctx context.Context, f Filter) (decimal.Decimal, error) {
	q := "SELECT toDecimal128(sum(count), 0) FROM " + s.DB + ".outcomes WHERE tenant = ? AND event_time >= ? AND event_time < ?"
	args := []any{f.Tenant, f.From.UTC(), f.To.UTC()}
	if f.Column == "workflow" {
		q += " AND workflow = ?"
		args = append(args, f.Value)
	}
	var n decimal.Decimal
	if err := s.Conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		return decimal.Zero, fmt.Errorf("levers: outcomes: %w", err)
	}
	return n, nil
}

// WhatIfs re-prices the filter's calls on every candidate. The long-context
// threshold of each candidate is the one in force at the period's start.
func (s Source) WhatIfs(ctx context.Context, e *pricing.Engine, f Filter, cands []Candidate, cache CacheAssumption) ([]WhatIf, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var out []WhatIf
	for _, c := range cands {
		info, err := e.Lookup(c.Provider, c.Model, f.From)
		if err != nil {
			return nil, fmt.Errorf("levers: candidate %s: %w", c, err)
		}
		groups, err := s.Groups(ctx, f, info.LongContextThreshold, "")
		if err != nil {
			return nil, err
		}
		w, err := Reprice(e, groups, Candidate{info.Provider, info.Model}, cache)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Saving().GreaterThan(out[j].Saving()) })
	return out, nil
}

// LongContextSaving is what the filter's long-context calls would have cost
// had each stayed at or below its model's threshold (the same model and
// tokens at the base tier's prices): the saving of keeping prompts short.
type LongContextSaving struct {
	Provider, Model string
	Calls           int64
	Actual, Below   decimal.Decimal
	Currency        string
}

// LongContext prices the filter's long-context calls at their base tier.
func (s Source) LongContext(ctx context.Context, e *pricing.Engine, f Filter) ([]LongContextSaving, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	where, args := f.where()
	rows, err := s.Conn.Query(ctx, "SELECT DISTINCT provider, model FROM "+s.DB+".priced_usage WHERE "+where+
		" AND endsWith(pricing_tier, '_long_context') ORDER BY provider, model", args...)
	if err != nil {
		return nil, fmt.Errorf("levers: long context: %w", err)
	}
	var models [][2]string
	for rows.Next() {
		var p, m string
		if err := rows.Scan(&p, &m); err != nil {
			rows.Close()
			return nil, err
		}
		models = append(models, [2]string{p, m})
	}
	rows.Close()
	var out []LongContextSaving
	for _, pm := range models {
		mf := f
		groups, err := s.Groups(ctx, mf, 0, fmt.Sprintf("endsWith(pricing_tier, '_long_context') AND provider = %s AND model = %s", quote(pm[0]), quote(pm[1])))
		if err != nil {
			return nil, err
		}
		// Long = false on the same model: the base tier's rates.
		w, err := Reprice(e, groups, Candidate{pm[0], pm[1]}, CacheSame)
		if err != nil {
			return nil, err
		}
		out = append(out, LongContextSaving{Provider: pm[0], Model: pm[1], Calls: w.Calls, Actual: w.Actual, Below: w.Repriced, Currency: w.Currency})
	}
	return out, nil
}

// quote makes a ClickHouse string literal of a value read from ClickHouse.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// DecomposePeriods reads v_lever_inputs for a workflow's two periods of
// tenant-local days ([from, to) each) and decomposes the change in cost per
// outcome; it also returns both periods' usage for the before/after figures.
func (s Source) DecomposePeriods(ctx context.Context, tenant, workflow string, before, after [2]time.Time) (Decomposition, [2]PeriodUsage, string, error) {
	read := func(r [2]time.Time) (PeriodUsage, string, error) {
		// Dates from time.Time, formatted here: the view's parameters are Dates.
		q := fmt.Sprintf(`SELECT billing_currency, provider, model, calls, input_tokens, cache_read_input_tokens,
	cache_write_input_tokens, output_tokens, cost_uncached_input, cost_cache_read, cost_cache_write, cost_output, cost_units, outcomes
FROM %s.v_lever_inputs(from = '%s', to = '%s') WHERE tenant = ? AND workflow = ? ORDER BY provider, model`,
			s.DB, r[0].Format(time.DateOnly), r[1].Format(time.DateOnly))
		rows, err := s.Conn.Query(ctx, q, tenant, workflow)
		if err != nil {
			return PeriodUsage{}, "", fmt.Errorf("levers: lever inputs: %w", err)
		}
		defer rows.Close()
		p := PeriodUsage{Outcomes: decimal.Zero}
		var cur string
		for rows.Next() {
			var m ModelUsage
			var c string
			var n, in, cr, cw, o, outc uint64
			var cu, ccr, ccw, co, cun decimal.Decimal
			if err := rows.Scan(&c, &m.Provider, &m.Model, &n, &in, &cr, &cw, &o, &cu, &ccr, &ccw, &co, &cun, &outc); err != nil {
				return PeriodUsage{}, "", err
			}
			if cur != "" && c != cur {
				return PeriodUsage{}, "", fmt.Errorf("levers: %s/%s bills in %s and %s", tenant, workflow, cur, c)
			}
			cur = c
			m.Calls, m.InputTokens, m.CacheReadTokens, m.CacheWriteTokens, m.OutputTokens = int64(n), int64(in), int64(cr), int64(cw), int64(o)
			m.CostUncachedInput, m.CostCacheRead, m.CostCacheWrite, m.CostOutput, m.CostUnits = cu, ccr, ccw, co, cun
			p.Models = append(p.Models, m)
			p.Outcomes = decimal.NewFromInt(int64(outc))
		}
		return p, cur, rows.Err()
	}
	var both [2]PeriodUsage
	b, cur, err := read(before)
	if err != nil {
		return Decomposition{}, both, "", err
	}
	a, cur2, err := read(after)
	if err != nil {
		return Decomposition{}, both, "", err
	}
	if cur == "" {
		cur = cur2
	}
	both = [2]PeriodUsage{b, a}
	d, err := Decompose(b, a)
	return d, both, cur, err
}

// Figures are a period's per-call and per-outcome numbers, the before/after
// view of a change: cost per call can fall while cost per outcome rises.
type Figures struct {
	Calls                          int64
	Outcomes                       decimal.Decimal
	Spend                          decimal.Decimal
	CostPerCall, CostPerOutcome    *big.Rat // nil when undefined
	TokensPerCall, OutcomesPerCall *big.Rat
}

// FiguresOf sums a period's usage.
func FiguresOf(p PeriodUsage) Figures {
	f := Figures{Outcomes: p.Outcomes, Spend: decimal.Zero}
	var tokens int64
	for _, m := range p.Models {
		f.Calls += m.Calls
		tokens += m.InputTokens + m.OutputTokens
		f.Spend = f.Spend.Add(m.CostUncachedInput).Add(m.CostCacheRead).Add(m.CostCacheWrite).Add(m.CostOutput).Add(m.CostUnits)
	}
	calls := exact.Int(f.Calls)
	f.CostPerCall = exact.Quo(exact.Rat(f.Spend), calls)
	f.CostPerOutcome = exact.Quo(exact.Rat(f.Spend), exact.Rat(f.Outcomes))
	f.TokensPerCall = exact.Quo(exact.Int(tokens), calls)
	f.OutcomesPerCall = exact.Quo(exact.Rat(f.Outcomes), calls)
	return f
}

// DriverAnomaly is an anomaly with what it is about and what it cost.
type DriverAnomaly struct {
	Anomaly
	Tenant, Workflow string
	Cause            string          // what changed that day, as far as the data shows
	Impact           decimal.Decimal // extra spend over the run, for drivers spend scales with
	ImpactKnown      bool
	Currency         string
}

type dayRow struct {
	day      time.Time
	spend    decimal.Decimal
	cur      string
	values   map[string]*big.Rat
	topModel string
	versions []string
	models   []string
}

// Anomalies runs the detector over v_driver_daily for every workflow of a
// tenant between from and to (dates, inclusive of from).
func (s Source) Anomalies(ctx context.Context, tenant string, from, to time.Time, cfg DetectConfig) ([]DriverAnomaly, error) {
	rows, err := s.Conn.Query(ctx, `SELECT workflow, local_date, billing_currency, spend,
	ifNull(toString(tokens_per_call), ''), ifNull(toString(cache_hit_rate), ''), ifNull(toString(reasoning_share), ''),
	ifNull(toString(top_model_share), ''), ifNull(toString(calls_per_outcome), ''),
	top_model, prompt_versions, models
FROM `+s.DB+`.v_driver_daily WHERE tenant = ? AND local_date >= ? AND local_date < ? ORDER BY workflow, local_date`, tenant, from, to)
	if err != nil {
		return nil, fmt.Errorf("levers: drivers: %w", err)
	}
	defer rows.Close()
	series := map[string][]dayRow{}
	var order []string
	for rows.Next() {
		var wf, cur, tpc, chr, rs, tms, cpo, top string
		var day time.Time
		var spend decimal.Decimal
		var versions, models []string
		if err := rows.Scan(&wf, &day, &cur, &spend, &tpc, &chr, &rs, &tms, &cpo, &top, &versions, &models); err != nil {
			return nil, err
		}
		if _, ok := series[wf]; !ok {
			order = append(order, wf)
		}
		r := dayRow{day: day, spend: spend, cur: cur, topModel: top, versions: versions, models: models, values: map[string]*big.Rat{
			DriverTokensPerCall: ratOf(tpc), DriverCacheHitRate: ratOf(chr), DriverReasoningShare: ratOf(rs),
			DriverFrontierShare: ratOf(tms), DriverCallsPerOutcome: ratOf(cpo),
		}}
		series[wf] = append(series[wf], r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []DriverAnomaly
	for _, wf := range order {
		days := series[wf]
		for _, drv := range []string{DriverTokensPerCall, DriverCacheHitRate, DriverReasoningShare, DriverFrontierShare, DriverCallsPerOutcome} {
			pts := make([]Point, len(days))
			for i, d := range days {
				pts[i] = Point{Day: d.day, Value: d.values[drv]}
			}
			for _, a := range Detect(drv, pts, cfg) {
				da := DriverAnomaly{Anomaly: a, Tenant: tenant, Workflow: wf, Cause: causeOf(days, a)}
				// Spend is proportional to tokens per call and to calls per
				// outcome (other things equal): the extra spend of the run is
				// spend x (1 - baseline/value), day by day.
				if (drv == DriverTokensPerCall || drv == DriverCallsPerOutcome) && a.Baseline.Sign() > 0 {
					sum := exact.Zero()
					for _, d := range days {
						v := d.values[drv]
						if d.day.Before(a.Start) || d.day.After(a.End) || v == nil || v.Sign() == 0 {
							continue
						}
						sum = exact.Add(sum, exact.Mul(exact.Rat(d.spend), exact.Sub(exact.Int(1), exact.Quo(a.Baseline, v))))
						da.Currency = d.cur
					}
					da.Impact, da.ImpactKnown = exact.Round(sum, 2), true
				}
				out = append(out, da)
			}
		}
	}
	return out, nil
}

func ratOf(s string) *big.Rat {
	if s == "" || s == "\\N" || s == "NULL" || s == "nan" || s == "inf" {
		return nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil
	}
	return r
}

// causeWindow is how many days up to an anomaly's first day a change may
// have happened in to be named as its likely cause (an effect such as calls
// per outcome can show a day or two after the prompt or model change).
const causeWindow = 3

// causeOf names what changed in the causeWindow days up to the anomaly's
// first day against the week before them: a prompt version or a model first
// seen then, or a change of the top model (routing).
func causeOf(days []dayRow, a Anomaly) string {
	winStart := a.Start.AddDate(0, 0, -(causeWindow - 1))
	seenV, seenM := map[string]bool{}, map[string]bool{}
	var prevTop string
	var causes []string
	found := map[string]bool{}
	add := func(c string) {
		if !found[c] {
			found[c] = true
			causes = append(causes, c)
		}
	}
	for _, d := range days {
		if d.day.Before(winStart.AddDate(0, 0, -7)) {
			continue
		}
		if d.day.After(a.Start) {
			break
		}
		if d.day.Before(winStart) {
			for _, v := range d.versions {
				seenV[v] = true
			}
			for _, m := range d.models {
				seenM[m] = true
			}
			prevTop = d.topModel
			continue
		}
		for _, v := range d.versions {
			if !seenV[v] && v != "@" {
				add("new prompt version " + v)
			}
		}
		for _, m := range d.models {
			if !seenM[m] {
				add("new model " + m)
			}
		}
		if prevTop != "" && d.topModel != prevTop {
			add(fmt.Sprintf("routing change: most calls on %s (was %s)", d.topModel, prevTop))
		}
	}
	if len(causes) == 0 {
		return fmt.Sprintf("no prompt, model or routing change seen in the %d days up to it", causeWindow)
	}
	sort.Strings(causes)
	return strings.Join(causes, "; ")
}
