package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/forecast"
)

// FirstOpen is the first month of year (in loc) that has not ended at now:
// 1 when the year is ahead, 12 when it is over (options then act on December only).
func FirstOpen(year int, loc *time.Location, now time.Time) forecast.Month {
	m := 1
	for m < 12 && !time.Date(year, time.Month(m)+1, 1, 0, 0, 0, 0, loc).After(now) {
		m++
	}
	return forecast.Month(m)
}

// Actuals reads v_usage_model_month: a tenant's actual usage per workflow,
// model and month of year (the bridge's input; summed per month, the
// reconciliation's actuals).
func Actuals(ctx context.Context, conn driver.Conn, db, tenant string, year int) ([]Actual, error) {
	rows, err := conn.Query(ctx, "SELECT workflow, provider, model, toMonth(month), calls, input_tokens, cache_read_input_tokens, cache_write_input_tokens, output_tokens, reasoning_tokens, effective_cost, spend FROM "+
		db+".v_usage_model_month WHERE tenant = ? AND toYear(month) = ? ORDER BY month, workflow, provider, model", tenant, uint16(year))
	if err != nil {
		return nil, fmt.Errorf("v_usage_model_month: %w", err)
	}
	defer rows.Close()
	var out []Actual
	for rows.Next() {
		var a Actual
		var prov, model string
		var m uint8
		var calls, in, cr, cw, outT, re uint64
		if err := rows.Scan(&a.Workflow, &prov, &model, &m, &calls, &in, &cr, &cw, &outT, &re, &a.CostPricing, &a.Cost); err != nil {
			return nil, err
		}
		a.Model, a.Month, a.Calls = prov+"/"+model, forecast.Month(m), int64(calls)
		a.Tokens = forecast.ClassTokens{Input: decimal.NewFromUint64(in), CacheRead: decimal.NewFromUint64(cr), CacheWrite: decimal.NewFromUint64(cw), Output: decimal.NewFromUint64(outT), Reasoning: decimal.NewFromUint64(re)}
		out = append(out, a)
	}
	return out, rows.Err()
}

// ClosedConfig is the reconciliation of a year at now: options from the
// first open month, closed months at their actual spend (0 without usage).
func ClosedConfig(acts []Actual, from forecast.Month) Config {
	c := Config{From: from, Actuals: map[forecast.Month]decimal.Decimal{}}
	for m := forecast.Month(1); m < from; m++ {
		c.Actuals[m] = decimal.Zero
	}
	for _, a := range acts {
		if a.Month < from {
			c.Actuals[a.Month] = c.Actuals[a.Month].Add(a.Cost)
		}
	}
	return c
}

// ClosedOnly keeps the actuals of months before from (the bridge's months).
func ClosedOnly(acts []Actual, from forecast.Month) []Actual {
	var out []Actual
	for _, a := range acts {
		if a.Month < from {
			out = append(out, a)
		}
	}
	return out
}
