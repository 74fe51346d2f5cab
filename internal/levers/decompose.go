package levers

import (
	"errors"
	"fmt"
	"math/big"
	"sort"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/exact"
)

// ModelUsage is one model's traffic in one period of one slice (a workflow,
// a prompt template, a team). Input counts include cache reads and writes;
// costs are effective costs in one currency and add up to the slice's spend.
type ModelUsage struct {
	Provider, Model  string
	Calls            int64
	InputTokens      int64 // total, including cache reads and writes
	CacheReadTokens  int64
	CacheWriteTokens int64
	OutputTokens     int64 // total, including reasoning

	CostUncachedInput decimal.Decimal
	CostCacheRead     decimal.Decimal
	CostCacheWrite    decimal.Decimal
	CostOutput        decimal.Decimal // output and reasoning
	CostUnits         decimal.Decimal // per-request, image, tool-call … prices
}

// PeriodUsage is a slice's traffic and outcomes in one period.
type PeriodUsage struct {
	Outcomes decimal.Decimal // outcome count (sum of outcomes.count)
	Models   []ModelUsage
}

// Lever names, in the order Decompose applies them.
const (
	LeverPrice   = "price"   // catalogue and contract prices per token class and unit, FX
	LeverRouting = "routing" // share of calls per model
	LeverPrompt  = "prompt"  // input and output tokens per call
	LeverCaching = "caching" // share of input read from or written to the cache
	LeverVolume  = "volume"  // calls per outcome
)

// Levers in application order.
var Levers = []string{LeverPrice, LeverRouting, LeverPrompt, LeverCaching, LeverVolume}

// Decomposition splits the change in cost per outcome between two periods
// into the effect of each lever. Effects are exact: they add up to
// After - Before with no residual (the presentation rounding in Rounded keeps
// that property).
type Decomposition struct {
	Before, After *big.Rat            // cost per outcome
	Effects       map[string]*big.Rat // lever -> change in cost per outcome
}

// Total is After - Before.
func (d Decomposition) Total() *big.Rat { return exact.Sub(d.After, d.Before) }

// Rounded returns before, after, and the effects in Levers order, rounded to
// scale places so that the effects add up exactly to after - before as shown.
func (d Decomposition) Rounded(scale int32) (before, after decimal.Decimal, effects []decimal.Decimal) {
	before, after = exact.Round(d.Before, scale), exact.Round(d.After, scale)
	// Round the endpoints, then make the parts sum to their rounded difference:
	// the parts plus the endpoints' rounding errors, rounded together.
	parts := make([]*big.Rat, 0, len(Levers)+2)
	for _, l := range Levers {
		parts = append(parts, d.Effects[l])
	}
	errAfter := exact.Sub(exact.Rat(after), d.After)
	errBefore := exact.Sub(d.Before, exact.Rat(before))
	// Spread the endpoint rounding over the largest effect so the shown
	// parts add up to the shown total.
	big_ := 0
	for i, p := range parts {
		if new(big.Rat).Abs(p).Cmp(new(big.Rat).Abs(parts[big_])) > 0 {
			big_ = i
		}
	}
	parts[big_] = exact.Add(parts[big_], errAfter, errBefore)
	return before, after, exact.RoundSum(parts, scale)
}

// ErrNoOutcomes is returned when a period has no outcomes: cost per outcome
// is undefined there, and no decomposition is made up.
var ErrNoOutcomes = errors.New("no outcomes in the period: cost per outcome is undefined")

// Decompose attributes the change in cost per outcome from before to after to
// the five levers by chained substitution: starting from before, each lever's
// drivers are switched to their after values in the order of Levers, and each
// lever's effect is the change that switch makes. The chain ends at after, so
// the effects add up exactly to the total change. The order is part of the
// method (price effects are measured at the old mix and volumes, volume last).
//
// Cost per outcome is modelled as
//
//	CPO = calls/outcomes × Σ_m share_m × cost_per_call_m
//	cost_per_call_m = in_m × ((1-r_m-w_m)·p_in + r_m·p_read + w_m·p_write) + out_m·p_out + u_m
//
// with in/out tokens per call (prompt), r/w the cached shares of input
// (caching), share the model mix (routing), p the effective price per token
// of each class and u the unit cost per call (price), calls/outcomes
// (volume). With every driver taken from one period the formula gives that
// period's spend / outcomes exactly. A driver that is undefined in one period
// (a model not used, a token class with no tokens) takes the other period's
// value, so switching it changes nothing by itself.
func Decompose(before, after PeriodUsage) (Decomposition, error) {
	if !before.Outcomes.IsPositive() || !after.Outcomes.IsPositive() {
		return Decomposition{}, ErrNoOutcomes
	}
	b, err := driversOf(before)
	if err != nil {
		return Decomposition{}, fmt.Errorf("before: %w", err)
	}
	a, err := driversOf(after)
	if err != nil {
		return Decomposition{}, fmt.Errorf("after: %w", err)
	}
	fill(b, a)
	fill(a, b)

	cur := b.clone()
	d := Decomposition{Before: cur.cpo(), Effects: map[string]*big.Rat{}}
	prev := d.Before
	for _, l := range Levers {
		cur.take(a, l)
		v := cur.cpo()
		d.Effects[l] = exact.Sub(v, prev)
		prev = v
	}
	d.After = prev
	return d, nil
}

type modelDrivers struct {
	share               *big.Rat
	in, out             *big.Rat
	r, w                *big.Rat
	pIn, pRd, pWr, pOut *big.Rat
	u                   *big.Rat
}

type drivers struct {
	callsPerOutcome *big.Rat
	models          map[string]*modelDrivers
}

func driversOf(p PeriodUsage) (*drivers, error) {
	var calls int64
	for _, m := range p.Models {
		if m.Calls < 0 || m.InputTokens < 0 || m.OutputTokens < 0 || m.CacheReadTokens < 0 || m.CacheWriteTokens < 0 ||
			m.CacheReadTokens+m.CacheWriteTokens > m.InputTokens {
			return nil, fmt.Errorf("%s/%s: inconsistent token counts", m.Provider, m.Model)
		}
		calls += m.Calls
	}
	if calls == 0 {
		return nil, errors.New("no calls")
	}
	d := &drivers{callsPerOutcome: exact.Quo(exact.Int(calls), exact.Rat(p.Outcomes)), models: map[string]*modelDrivers{}}
	for _, m := range p.Models {
		if m.Calls == 0 {
			continue
		}
		key := m.Provider + "/" + m.Model
		if _, dup := d.models[key]; dup {
			return nil, fmt.Errorf("%s listed twice", key)
		}
		n := exact.Int(m.Calls)
		in := exact.Int(m.InputTokens)
		unc := exact.Int(m.InputTokens - m.CacheReadTokens - m.CacheWriteTokens)
		md := &modelDrivers{
			share: exact.Quo(n, exact.Int(calls)),
			in:    exact.Quo(in, n),
			out:   exact.Quo(exact.Int(m.OutputTokens), n),
			r:     exact.Quo(exact.Int(m.CacheReadTokens), in),
			w:     exact.Quo(exact.Int(m.CacheWriteTokens), in),
			pIn:   priceOf(m.CostUncachedInput, unc),
			pRd:   priceOf(m.CostCacheRead, exact.Int(m.CacheReadTokens)),
			pWr:   priceOf(m.CostCacheWrite, exact.Int(m.CacheWriteTokens)),
			pOut:  priceOf(m.CostOutput, exact.Int(m.OutputTokens)),
			u:     exact.Quo(exact.Rat(m.CostUnits), n),
		}
		for _, c := range []struct {
			cost decimal.Decimal
			qty  int64
		}{{m.CostUncachedInput, m.InputTokens - m.CacheReadTokens - m.CacheWriteTokens}, {m.CostCacheRead, m.CacheReadTokens},
			{m.CostCacheWrite, m.CacheWriteTokens}, {m.CostOutput, m.OutputTokens}} {
			if c.qty == 0 && !c.cost.IsZero() {
				return nil, fmt.Errorf("%s: cost %s on a token class with no tokens", key, c.cost)
			}
		}
		d.models[key] = md
	}
	return d, nil
}

// priceOf is cost per token, undefined (nil) for a class with no tokens.
func priceOf(cost decimal.Decimal, qty *big.Rat) *big.Rat { return exact.Quo(exact.Rat(cost), qty) }

// fill gives every driver undefined in d the value it has in o, and adds the
// models only o used with a zero share.
func fill(d, o *drivers) {
	for k, om := range o.models {
		m, ok := d.models[k]
		if !ok {
			c := *om
			c.share = exact.Zero()
			d.models[k] = &c
			continue
		}
		for _, p := range []struct {
			dst **big.Rat
			src *big.Rat
		}{
			{&m.in, om.in}, {&m.out, om.out}, {&m.r, om.r}, {&m.w, om.w},
			{&m.pIn, om.pIn}, {&m.pRd, om.pRd}, {&m.pWr, om.pWr}, {&m.pOut, om.pOut}, {&m.u, om.u},
		} {
			if *p.dst == nil {
				*p.dst = p.src
			}
		}
	}
}

func (d *drivers) clone() *drivers {
	c := &drivers{callsPerOutcome: d.callsPerOutcome, models: map[string]*modelDrivers{}}
	for k, m := range d.models {
		mm := *m
		c.models[k] = &mm
	}
	return c
}

// take switches the drivers of one lever to o's values.
func (d *drivers) take(o *drivers, lever string) {
	switch lever {
	case LeverVolume:
		d.callsPerOutcome = o.callsPerOutcome
		return
	}
	for k, m := range d.models {
		om := o.models[k]
		switch lever {
		case LeverPrice:
			m.pIn, m.pRd, m.pWr, m.pOut, m.u = om.pIn, om.pRd, om.pWr, om.pOut, om.u
		case LeverRouting:
			m.share = om.share
		case LeverPrompt:
			m.in, m.out = om.in, om.out
		case LeverCaching:
			m.r, m.w = om.r, om.w
		}
	}
}

func (d *drivers) cpo() *big.Rat {
	keys := make([]string, 0, len(d.models))
	for k := range d.models {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sum := exact.Zero()
	for _, k := range keys {
		m := d.models[k]
		if m.share.Sign() == 0 {
			continue
		}
		uncShare := exact.Sub(exact.Sub(exact.Int(1), or0(m.r)), or0(m.w))
		perIn := exact.Add(mulOr0(uncShare, m.pIn), mulOr0(or0(m.r), m.pRd), mulOr0(or0(m.w), m.pWr))
		perCall := exact.Add(exact.Mul(or0(m.in), perIn), mulOr0(or0(m.out), m.pOut), or0(m.u))
		sum = exact.Add(sum, exact.Mul(m.share, perCall))
	}
	return exact.Mul(d.callsPerOutcome, sum)
}

func or0(r *big.Rat) *big.Rat {
	if r == nil {
		return exact.Zero()
	}
	return r
}

// mulOr0 is a*b where an undefined price multiplies only a zero quantity
// (a class no period used): the product is zero.
func mulOr0(a, b *big.Rat) *big.Rat {
	if b == nil || a.Sign() == 0 {
		return exact.Zero()
	}
	return exact.Mul(a, b)
}
