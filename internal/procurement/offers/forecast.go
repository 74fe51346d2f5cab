package offers

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/forecast"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/procurement"
)

// ForecastScenarios is the approved forecast (internal/forecast) as a
// procurement.ScenarioSource: each scenario builds the plan with a driver
// scale and turns its workflow × model × month lines into monthly usage.
// Token counts and calls of a line are rounded down to whole units (the
// forecast's averages are fractional); lines of other providers, of months
// outside the plan year or the term, and budget-cap cuts are left out.
type ForecastScenarios struct {
	Plan   *forecast.Plan
	Engine *pricing.Engine
	Scales map[string]forecast.Scale // scenario name → driver scale
}

// AdoptionScales maps scenario percentages (as in the offers file) to
// adoption scales; the forecast caps adoption at every eligible user.
func AdoptionScales(pct map[string]int64) map[string]forecast.Scale {
	out := map[string]forecast.Scale{}
	for n, p := range pct {
		out[n] = forecast.Scale{Adoption: decimal.New(p, -2)}
	}
	return out
}

type fkey struct {
	month, model, tier string
	long               bool
}

// Scenarios implements procurement.ScenarioSource.
func (f ForecastScenarios) Scenarios(_ context.Context, tenant, provider string, months []string) ([]procurement.Scenario, error) {
	if f.Plan.Tenant != tenant {
		return nil, fmt.Errorf("forecast plan is for tenant %q, offers for %q", f.Plan.Tenant, tenant)
	}
	inTerm := map[string]bool{}
	for _, m := range months {
		inTerm[m] = true
	}
	names := make([]string, 0, len(f.Scales))
	for n := range f.Scales {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		return f.Scales[names[i]].Adoption.LessThan(f.Scales[names[j]].Adoption) || (f.Scales[names[i]].Adoption.Equal(f.Scales[names[j]].Adoption) && names[i] < names[j])
	})
	var out []procurement.Scenario
	for _, name := range names {
		sc := f.Scales[name]
		res, err := forecast.Build(f.Plan, f.Engine, forecast.Options{Scale: sc})
		if err != nil {
			return nil, fmt.Errorf("forecast %s: %w", name, err)
		}
		sums := map[fkey]*procurement.Usage{}
		var order []fkey
		for _, l := range res.Lines {
			prov, model, ok := strings.Cut(l.Model, "/")
			month := l.Month.Label(f.Plan.Year)
			if !ok || l.Model == forecast.DeniedModel || !strings.EqualFold(prov, provider) || !inTerm[month] {
				continue
			}
			tier := "standard"
			if w := f.Plan.Workflow(l.Workflow); w != nil && w.ServiceTier != "" {
				tier = w.ServiceTier
			}
			at, _ := procurement.PeriodStart(month)
			long := false
			if info, err := f.Engine.Lookup(prov, model, at); err == nil && info.LongContextThreshold > 0 {
				long = l.PerCall.Input.GreaterThan(decimal.NewFromInt(info.LongContextThreshold))
			}
			k := fkey{month, model, tier, long}
			u := sums[k]
			if u == nil {
				u = &procurement.Usage{Period: month, Tenant: tenant, Provider: prov, Model: model, Tier: tier, LongContext: long}
				sums[k] = u
				order = append(order, k)
			}
			floor := func(d decimal.Decimal) int64 { return d.Floor().IntPart() }
			u.Requests += floor(l.Calls)
			u.InputTokens += floor(l.Tokens.Input)
			u.CacheReadInputTokens += floor(l.Tokens.CacheRead)
			u.CacheWriteInputTokens += floor(l.Tokens.CacheWrite)
			u.OutputTokens += floor(l.Tokens.Output)
			u.ReasoningTokens += floor(l.Tokens.Reasoning)
		}
		s := procurement.Scenario{Name: name, Label: fmt.Sprintf("forecast %s/%s %d, adoption x%s", f.Plan.Tenant, f.Plan.Scenario, f.Plan.Year, orOne(sc.Adoption))}
		for _, k := range order {
			s.Usage = append(s.Usage, *sums[k])
		}
		out = append(out, s)
	}
	return out, nil
}

func orOne(d decimal.Decimal) string {
	if d.IsZero() {
		return "1"
	}
	return d.String()
}
