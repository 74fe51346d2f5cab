package bill

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// Causes of a difference between metered and billed, in the order they are
// computed. Each is computed from its own evidence; what none explains is
// the residual.
const (
	CauseDayBoundary  = "day_boundary"     // the bill's days are another zone's
	CauseFX           = "fx"               // the bill converted at another rate than ours
	CauseUnitPrice    = "unit_price"       // the bill's unit price differs from the catalogue/contract
	CauseDLQ          = "unpriced_dlq"     // events refused by the pipeline (DLQ), at their estimate
	CauseIncomplete   = "usage_incomplete" // events flagged as carrying incomplete usage
	CauseNeverMetered = "never_metered"    // calls on the bill tokenmeter never saw
)

// Metered is tokenmeter's priced usage for one UTC hour, provider, project
// and model, optionally one token class (the priced events view unpivoted).
type Metered struct {
	Hour     time.Time // start of the UTC hour
	Provider string
	Project  string
	Model    string
	Class    string // "" when the row is not split by class
	Tokens   int64
	// Cost is the effective cost in the pricing currency; BilledCost the same
	// in BillingCurrency at FXRate (the event's own conversion).
	Cost            decimal.Decimal
	PricingCurrency string
	BilledCost      decimal.Decimal
	BillingCurrency string
	FXRate          decimal.Decimal
}

// Known is evidence of usage the metered figures lack: refused (DLQ'd)
// events at their estimated cost, or events flagged usage-incomplete at
// their estimated missing cost, in the pricing currency.
type Known struct {
	Hour     time.Time
	Provider string
	Project  string
	Model    string
	Events   int64
	Amount   decimal.Decimal
}

// Evidence is everything besides the priced usage.
type Evidence struct {
	DLQ        []Known
	Incomplete []Known
}

// Explanation is one cause's share of a difference, in the bill's currency.
type Explanation struct {
	Cause  string
	Amount decimal.Decimal
	Detail string
}

// Result is one day × provider × project × model.
type Result struct {
	Day, Provider, Project, Model string
	Currency                      string
	Metered                       decimal.Decimal // tokenmeter's own figure for the UTC day
	Billed                        decimal.Decimal
	Difference                    decimal.Decimal // Billed − Metered
	Explained                     []Explanation
	Residual                      decimal.Decimal // Difference − Σ Explained
	Problem                       string          // why it could not be reconciled (currency mismatch)
}

// Alert says a provider-day's residual is larger than the configured share.
type Alert struct {
	Day, Provider    string
	Residual, Billed decimal.Decimal
	Currency         string
	ThresholdPercent decimal.Decimal
}

// Reconciler reconciles with the pipeline's pricing engine (used to name
// models canonically and to price the bill's quantities at our rates).
type Reconciler struct {
	cfg    *Config
	engine *pricing.Engine
	tenant string
}

// New checks cfg. tenant is whose contract prices "our rate" (may be "").
func New(cfg *Config, eng *pricing.Engine, tenant string) (*Reconciler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Reconciler{cfg: cfg, engine: eng, tenant: tenant}, nil
}

type key struct{ day, provider, project, model string }

func (r *Reconciler) canonical(provider, model string, at time.Time) string {
	if model == "" {
		return ""
	}
	if info, err := r.engine.Lookup(provider, model, at); err == nil {
		return info.Model
	}
	return strings.ToLower(model)
}

// ourCost prices n tokens of one class at our rates (catalogue + contract)
// on the standard tier at instant at, in the pricing currency.
func (r *Reconciler) ourCost(provider, model, class string, n int64, at time.Time) (decimal.Decimal, error) {
	ev := event.UsageEvent{EventID: "bill", EventTime: at, Tenant: r.tenant, Provider: provider, Model: model}
	switch class {
	case "input":
		ev.InputTokens = n
	case "cache_read":
		ev.InputTokens, ev.CacheReadInputTokens = n, n
	case "cache_write":
		ev.InputTokens, ev.CacheWriteInputTokens = n, n
	case "cache_write_1h":
		ev.InputTokens, ev.CacheWriteInputTokens, ev.CacheWrite1hInputTokens = n, n, n
	case "output":
		ev.OutputTokens = n
	case "reasoning":
		ev.OutputTokens, ev.ReasoningTokens = n, n
	default:
		return decimal.Zero, fmt.Errorf("class %q", class)
	}
	var out event.PricedUsageEvent
	out.UsageEvent = ev
	if err := r.engine.PriceAggregate(&ev, false, "", &out); err != nil {
		return decimal.Zero, err
	}
	return out.ContractedCost.Decimal(), nil
}

type acc struct {
	lines           []Line
	utc, local      []Metered
	dlq, incomplete []Known
}

// Reconcile compares lines with metered usage. Every key present on either
// side gets a result; results are sorted by day, provider, project, model.
func (r *Reconciler) Reconcile(lines []Line, metered []Metered, ev Evidence) ([]Result, []Alert, error) {
	zones := map[string]*time.Location{}
	for _, s := range r.cfg.Sources {
		loc, err := time.LoadLocation(s.DayTimeZone)
		if err != nil {
			return nil, nil, err
		}
		p := strings.ToLower(s.Provider)
		if _, ok := zones[p]; !ok {
			zones[p] = loc
		}
	}
	zone := func(p string) *time.Location {
		if l, ok := zones[strings.ToLower(p)]; ok {
			return l
		}
		return time.UTC
	}
	m := map[key]*acc{}
	get := func(k key) *acc {
		a := m[k]
		if a == nil {
			a = &acc{}
			m[k] = a
		}
		return a
	}
	for _, l := range lines {
		k := key{l.Day, strings.ToLower(l.Provider), l.Project, r.canonical(l.Provider, l.Model, l.Start)}
		get(k).lines = append(get(k).lines, l)
	}
	for _, u := range metered {
		model := r.canonical(u.Provider, u.Model, u.Hour)
		p := strings.ToLower(u.Provider)
		ku := key{u.Hour.UTC().Format(time.DateOnly), p, u.Project, model}
		kl := key{u.Hour.In(zone(p)).Format(time.DateOnly), p, u.Project, model}
		get(ku).utc = append(get(ku).utc, u)
		get(kl).local = append(get(kl).local, u)
	}
	for _, list := range []struct {
		ks   []Known
		into func(*acc, Known)
	}{
		{ev.DLQ, func(a *acc, k Known) { a.dlq = append(a.dlq, k) }},
		{ev.Incomplete, func(a *acc, k Known) { a.incomplete = append(a.incomplete, k) }},
	} {
		for _, k := range list.ks {
			p := strings.ToLower(k.Provider)
			list.into(get(key{k.Hour.In(zone(p)).Format(time.DateOnly), p, k.Project, r.canonical(k.Provider, k.Model, k.Hour)}), k)
		}
	}
	keys := make([]key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.day != b.day {
			return a.day < b.day
		}
		if a.provider != b.provider {
			return a.provider < b.provider
		}
		if a.project != b.project {
			return a.project < b.project
		}
		return a.model < b.model
	})
	var out []Result
	for _, k := range keys {
		res, err := r.one(k, m[k])
		if err != nil {
			return nil, nil, err
		}
		out = append(out, res)
	}
	return out, r.alerts(out), nil
}

// one reconciles one key. The bill's currency decides which metered figure
// is compared: the pricing-currency cost when the bill is in it, else the
// billed cost when the bill is in the events' billing currency.
func (r *Reconciler) one(k key, a *acc) (Result, error) {
	res := Result{Day: k.day, Provider: k.provider, Project: k.project, Model: k.model}
	cur := ""
	for _, l := range a.lines {
		if cur != "" && l.Currency != cur {
			res.Problem = fmt.Sprintf("bill lines in %s and %s", cur, l.Currency)
		}
		cur = l.Currency
		res.Billed = res.Billed.Add(l.Amount)
	}
	sample := append(append([]Metered(nil), a.utc...), a.local...)
	if cur == "" && len(sample) > 0 {
		cur = sample[0].PricingCurrency
	}
	res.Currency = cur
	// rate converts pricing-currency amounts into the bill's currency at our rate.
	rate := decimal.NewFromInt(1)
	inPricing := true
	if len(sample) > 0 && cur != sample[0].PricingCurrency {
		if cur != sample[0].BillingCurrency {
			res.Problem = fmt.Sprintf("bill in %s, metered in %s and %s", cur, sample[0].PricingCurrency, sample[0].BillingCurrency)
			res.Difference = res.Billed
			res.Residual = res.Billed
			return res, nil
		}
		inPricing, rate = false, sample[0].FXRate
	}
	amount := func(u Metered) decimal.Decimal {
		if inPricing {
			return u.Cost
		}
		return u.BilledCost
	}
	sum := func(us []Metered) decimal.Decimal {
		t := decimal.Zero
		for _, u := range us {
			t = t.Add(amount(u))
		}
		return t
	}
	res.Metered = sum(a.utc)
	local := sum(a.local)
	res.Difference = res.Billed.Sub(res.Metered)
	add := func(cause string, v decimal.Decimal, detail string) {
		if !v.IsZero() {
			res.Explained = append(res.Explained, Explanation{Cause: cause, Amount: v, Detail: detail})
		}
	}
	add(CauseDayBoundary, local.Sub(res.Metered), "metered usage re-bucketed into the bill's calendar day")

	// FX and unit price, line by line.
	fx, price := decimal.Zero, decimal.Zero
	billedQty := map[string]int64{}
	qtyCost := decimal.Zero // bill quantities at our rates, bill currency
	for _, l := range a.lines {
		atOurRate := l.Amount
		if l.PricingCurrency != "" && !inPricing {
			atOurRate = l.PricingAmount.Mul(rate)
			fx = fx.Add(l.Amount.Sub(atOurRate))
		}
		if l.HasQuantity && l.Class != "" && k.model != "" {
			c, err := r.ourCost(k.provider, k.model, l.Class, l.Quantity, l.Start)
			if err != nil {
				return res, fmt.Errorf("%s: pricing the bill's quantity: %w", l.Source, err)
			}
			price = price.Add(atOurRate.Sub(c.Mul(rate)))
			qtyCost = qtyCost.Add(c.Mul(rate))
			billedQty[l.Class] += l.Quantity
		}
	}
	add(CauseFX, fx, "bill amount minus its pricing-currency amount at tokenmeter's FX rate")
	add(CauseUnitPrice, price, "bill amount minus the same quantity at the catalogue/contract price")

	known := decimal.Zero
	for _, kk := range []struct {
		cause string
		ks    []Known
	}{{CauseDLQ, a.dlq}, {CauseIncomplete, a.incomplete}} {
		t := decimal.Zero
		var n int64
		for _, e := range kk.ks {
			t = t.Add(e.Amount.Mul(rate))
			n += e.Events
		}
		add(kk.cause, t, fmt.Sprintf("%d events", n))
		known = known.Add(t)
	}

	// Never metered: nothing metered for a billed key; or tokens on the bill
	// beyond the metered tokens of the same classes and the known refusals.
	switch {
	case local.IsZero() && len(a.local) == 0 && res.Billed.IsPositive():
		rest := res.Billed.Sub(fx).Sub(price).Sub(known)
		add(CauseNeverMetered, rest, "billed with no metered usage for this project and model")
	case len(billedQty) > 0:
		met := decimal.Zero
		for _, u := range a.local {
			if _, ok := billedQty[u.Class]; ok {
				met = met.Add(amount(u))
			}
		}
		if gap := qtyCost.Sub(met).Sub(known); gap.IsPositive() {
			add(CauseNeverMetered, gap, "billed tokens beyond metered tokens and known refusals, at our rates")
		}
	}
	res.Residual = res.Difference
	for _, e := range res.Explained {
		res.Residual = res.Residual.Sub(e.Amount)
	}
	return res, nil
}

// alerts flags provider-days whose summed |residual| exceeds the configured
// share of that day's billed amount.
func (r *Reconciler) alerts(rs []Result) []Alert {
	type pd struct{ day, provider, cur string }
	res, billed := map[pd]decimal.Decimal{}, map[pd]decimal.Decimal{}
	var order []pd
	for _, x := range rs {
		k := pd{x.Day, x.Provider, x.Currency}
		if _, ok := res[k]; !ok {
			order = append(order, k)
		}
		res[k] = res[k].Add(x.Residual.Abs())
		billed[k] = billed[k].Add(x.Billed)
	}
	var out []Alert
	pct := r.cfg.ResidualAlertPercent.D
	for _, k := range order {
		if res[k].Mul(decimal.NewFromInt(100)).GreaterThan(billed[k].Abs().Mul(pct)) {
			out = append(out, Alert{Day: k.day, Provider: k.provider, Residual: res[k], Billed: billed[k], Currency: k.cur, ThresholdPercent: pct})
		}
	}
	return out
}
