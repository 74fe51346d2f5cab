package reconcile

import (
	"fmt"
	"math/big"
	"sort"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/exact"
	"github.com/tokenmeter/tokenmeter/internal/forecast"
)

// Actual is one closed month's actual usage of one workflow on one model, as
// the views report it.
type Actual struct {
	Month       forecast.Month
	Workflow    string
	Model       string // provider/model
	Calls       int64
	Tokens      forecast.ClassTokens // totals
	CostPricing decimal.Decimal      // effective cost in the pricing currency
	Cost        decimal.Decimal      // effective cost in the reporting currency, at the day's FX
}

// BridgeRow is one month's variance, split by driver:
//
//	volume     = (calls − planned calls) × planned cost per call (whole month)
//	mix        = Σ (calls_i − planned calls_i) × planned cost per call_i − volume
//	             (which workflows and models the calls went to)
//	efficiency = Σ (actual tokens_i − calls_i × planned tokens per call_i) · planned rates_i × planned FX
//	             (tokens per call and cache hit rate)
//	price      = Σ (actual cost_i − actual tokens_i · planned rates_i) × planned FX
//	             (catalogue and contract changes against the plan's prices)
//	fx         = Σ actual cost in reporting currency − actual cost_i × planned FX
//
// over cells i = workflow × model. They add up to Actual − Forecast exactly:
// every term is exact decimal arithmetic except volume, which divides by the
// planned calls and is rounded to 12 places, and mix is defined as the rest of
// the volume-and-mix effect, so nothing is lost.
type BridgeRow struct {
	Month                              forecast.Month
	Forecast, Actual, Variance         decimal.Decimal
	Volume, Mix, Efficiency, Price, FX decimal.Decimal
	PlannedCalls, ActualCalls          decimal.Decimal
	Unplanned                          []string // cells with actuals the plan never had
}

// Sum is the effects' total (== Variance).
func (b BridgeRow) Sum() decimal.Decimal {
	return b.Volume.Add(b.Mix).Add(b.Efficiency).Add(b.Price).Add(b.FX)
}

// Bridge splits each month with actuals into effects. base is the forecast
// of the approved plan p (built with eng, which also prices calls the plan
// did not have: an unplanned model's calls count as mix at the plan's prices).
func Bridge(p *forecast.Plan, eng forecast.Pricer, base *forecast.Result, actuals []Actual) ([]BridgeRow, error) {
	type cell struct {
		f      *forecast.Line
		a      *Actual
		denied decimal.Decimal
	}
	months := map[forecast.Month]map[[2]string]*cell{}
	get := func(m forecast.Month, wf, model string) *cell {
		if months[m] == nil {
			months[m] = map[[2]string]*cell{}
		}
		k := [2]string{wf, model}
		if months[m][k] == nil {
			months[m][k] = &cell{}
		}
		return months[m][k]
	}
	hasActual := map[forecast.Month]bool{}
	for i := range actuals {
		a := &actuals[i]
		c := get(a.Month, a.Workflow, a.Model)
		if c.a != nil {
			return nil, fmt.Errorf("actuals: %s %s/%s given twice", a.Month.Label(p.Year), a.Workflow, a.Model)
		}
		c.a = a
		hasActual[a.Month] = true
	}
	for i := range base.Lines {
		l := &base.Lines[i]
		if !hasActual[l.Month] {
			continue
		}
		if l.Model == forecast.DeniedModel {
			get(l.Month, l.Workflow, "").denied = l.Cost
			continue
		}
		get(l.Month, l.Workflow, l.Model).f = l
	}
	var out []BridgeRow
	for m := forecast.Month(1); m <= 12; m++ {
		cells := months[m]
		if !hasActual[m] {
			continue
		}
		keys := make([][2]string, 0, len(cells))
		for k := range cells {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"\x00"+keys[i][1] < keys[j][0]+"\x00"+keys[j][1] })
		row := BridgeRow{Month: m}
		volMix := decimal.Zero
		for _, k := range keys {
			c := cells[k]
			row.Forecast = row.Forecast.Add(c.denied)
			volMix = volMix.Add(c.denied.Neg())
			var r forecast.ClassRates
			var fx decimal.Decimal
			var perCall forecast.ClassTokens
			planned := c.f != nil
			if planned {
				r, fx, perCall = c.f.Rates, c.f.FXRate, c.f.PerCall
				row.Forecast = row.Forecast.Add(c.f.Cost)
				row.PlannedCalls = row.PlannedCalls.Add(c.f.Calls)
			}
			if c.a == nil {
				if planned {
					volMix = volMix.Sub(c.f.Cost)
				}
				continue
			}
			a := c.a
			n := decimal.NewFromInt(a.Calls)
			row.Actual = row.Actual.Add(a.Cost)
			row.ActualCalls = row.ActualCalls.Add(n)
			if !planned {
				row.Unplanned = append(row.Unplanned, k[0]+" "+k[1])
				tier := "standard"
				if w := p.Workflow(k[0]); w != nil {
					tier = w.ServiceTier
				}
				shape := a.Tokens
				if a.Calls > 0 {
					shape = a.Tokens.Mul(decimal.New(1, 0).Div(n)) // only picks the tier (rounded)
				}
				var err error
				if r, fx, err = forecast.RatesFor(p, eng, k[1], tier, m, shape); err != nil {
					r, fx = forecast.ClassRates{}, decimal.Zero // not priceable with the plan: all price + FX
				}
				// The plan's cost of these calls as they were: mix.
				volMix = volMix.Add(r.PerCall(a.Tokens).Mul(fx))
			} else {
				planCost := r.PerCall(perCall).Mul(fx)
				volMix = volMix.Add(n.Mul(planCost).Sub(c.f.Cost))
				row.Efficiency = row.Efficiency.Add(r.PerCall(a.Tokens).Sub(r.PerCall(perCall).Mul(n)).Mul(fx))
			}
			row.Price = row.Price.Add(a.CostPricing.Sub(r.PerCall(a.Tokens)).Mul(fx))
			row.FX = row.FX.Add(a.Cost.Sub(a.CostPricing.Mul(fx)))
		}
		if row.PlannedCalls.IsPositive() {
			row.Volume = row.ActualCalls.Sub(row.PlannedCalls).Mul(row.Forecast).DivRound(row.PlannedCalls, 12)
		}
		row.Mix = volMix.Sub(row.Volume)
		row.Variance = row.Actual.Sub(row.Forecast)
		out = append(out, row)
	}
	return out, nil
}

// Shown is the row at scale decimal places for presentation: the variance
// rounded half to even, and the five effects rounded so that they add up to
// exactly that (largest remainder, internal/exact), so a printed bridge adds
// up to the cent it shows.
func (b BridgeRow) Shown(scale int32) (variance, volume, mix, efficiency, price, fx decimal.Decimal) {
	parts := exact.RoundSum([]*big.Rat{exact.Rat(b.Volume), exact.Rat(b.Mix), exact.Rat(b.Efficiency), exact.Rat(b.Price), exact.Rat(b.FX)}, scale)
	return exact.Round(exact.Rat(b.Variance), scale), parts[0], parts[1], parts[2], parts[3], parts[4]
}
