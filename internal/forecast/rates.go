package forecast

import (
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Pricer is the part of the pricing engine the forecast needs: the same
// Price the processor calls, so a forecast call costs what the same call
// will cost when it happens (catalogue entry in force, tier, long context,
// contract).
type Pricer interface {
	Price(ev *event.UsageEvent, billingCurrency string, out *event.PricedUsageEvent) error
}

// ClassRates are exact prices per token of each disjoint class, in the
// pricing currency, after the tenant's contract.
type ClassRates struct {
	Currency   string
	PriceID    string
	ContractID string
	// Uncached input, cache read, cache write (5 min), non-reasoning output, reasoning.
	Input, CacheRead, CacheWrite, Output, Reasoning decimal.Decimal
}

// PerCall is the cost of one call of shape t at these rates.
func (r ClassRates) PerCall(t ClassTokens) decimal.Decimal {
	return t.Uncached().Mul(r.Input).
		Add(t.CacheRead.Mul(r.CacheRead)).
		Add(t.CacheWrite.Mul(r.CacheWrite)).
		Add(t.Output.Sub(t.Reasoning).Mul(r.Output)).
		Add(t.Reasoning.Mul(r.Reasoning))
}

// ClassTokens are token counts by class (per call or in total). Input and
// Output are totals; CacheRead, CacheWrite are subsets of Input, Reasoning of Output.
type ClassTokens struct {
	Input, CacheRead, CacheWrite, Output, Reasoning decimal.Decimal
}

// Uncached is input neither read from nor written to the cache.
func (t ClassTokens) Uncached() decimal.Decimal { return t.Input.Sub(t.CacheRead).Sub(t.CacheWrite) }

// Mul scales every class by k.
func (t ClassTokens) Mul(k decimal.Decimal) ClassTokens {
	return ClassTokens{t.Input.Mul(k), t.CacheRead.Mul(k), t.CacheWrite.Mul(k), t.Output.Mul(k), t.Reasoning.Mul(k)}
}

// Add sums two token counts.
func (t ClassTokens) Add(o ClassTokens) ClassTokens {
	return ClassTokens{t.Input.Add(o.Input), t.CacheRead.Add(o.CacheRead), t.CacheWrite.Add(o.CacheWrite), t.Output.Add(o.Output), t.Reasoning.Add(o.Reasoning)}
}

// Total is all tokens (input + output).
func (t ClassTokens) Total() decimal.Decimal { return t.Input.Add(t.Output) }

type rateKey struct {
	model, tier string
	month       Month
	shape       [5]int64
}

// rateCache probes the engine once per model, tier, month and call shape.
type rateCache struct {
	eng    Pricer
	tenant string
	m      map[rateKey]ClassRates
}

// rates finds the exact per-class rates for a call of (rounded) shape at
// instant at. The engine is linear within a tier, so each class's rate is
// the difference between pricing the call and the call with one more token
// of that class; the call's own size still picks the long-context tier.
func (c *rateCache) rates(model, tier string, month Month, at time.Time, t ClassTokens) (ClassRates, error) {
	shape := roundShape(t)
	k := rateKey{model, tier, month, shape}
	if r, ok := c.m[k]; ok {
		return r, nil
	}
	provider, name, _ := strings.Cut(model, "/")
	price := func(s [5]int64) (*event.PricedUsageEvent, error) {
		ev := event.UsageEvent{EventID: "forecast", EventTime: at.UTC(), Tenant: c.tenant, Provider: provider, Model: name,
			ServiceTier: tier, InputTokens: s[0], CacheReadInputTokens: s[1], CacheWriteInputTokens: s[2], OutputTokens: s[3], ReasoningTokens: s[4]}
		out := &event.PricedUsageEvent{UsageEvent: ev}
		if err := c.eng.Price(&out.UsageEvent, "", out); err != nil {
			return nil, fmt.Errorf("%s (%s) at %s: %w", model, tier, at.Format(time.DateOnly), err)
		}
		return out, nil
	}
	base, err := price(shape)
	if err != nil {
		return ClassRates{}, err
	}
	diff := func(add [5]int64) (decimal.Decimal, error) {
		s := shape
		for i := range s {
			s[i] += add[i]
		}
		p, err := price(s)
		if err != nil {
			return decimal.Zero, err
		}
		return p.EffectiveCost.Decimal().Sub(base.EffectiveCost.Decimal()), nil
	}
	r := ClassRates{Currency: base.PricingCurrency, PriceID: base.PriceID, ContractID: base.ContractID}
	for _, d := range []struct {
		add [5]int64
		dst *decimal.Decimal
	}{
		{[5]int64{1, 0, 0, 0, 0}, &r.Input},
		{[5]int64{1, 1, 0, 0, 0}, &r.CacheRead},
		{[5]int64{1, 0, 1, 0, 0}, &r.CacheWrite},
		{[5]int64{0, 0, 0, 1, 0}, &r.Output},
		{[5]int64{0, 0, 0, 1, 1}, &r.Reasoning},
	} {
		if *d.dst, err = diff(d.add); err != nil {
			return ClassRates{}, err
		}
	}
	if c.m == nil {
		c.m = map[rateKey]ClassRates{}
	}
	c.m[k] = r
	return r, nil
}

// roundShape rounds an average call to whole tokens (for tier selection
// only), keeping the subset rules.
func roundShape(t ClassTokens) [5]int64 {
	r := func(d decimal.Decimal) int64 { return d.Round(0).IntPart() }
	s := [5]int64{r(t.Input), r(t.CacheRead), r(t.CacheWrite), r(t.Output), r(t.Reasoning)}
	if s[1] > s[0] {
		s[1] = s[0]
	}
	if s[1]+s[2] > s[0] {
		s[2] = s[0] - s[1]
	}
	if s[4] > s[3] {
		s[4] = s[3]
	}
	return s
}
