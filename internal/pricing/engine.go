package pricing

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/money"
)

// Reasons a price cannot be found; they become DLQ reasons and metric labels.
const (
	ReasonUnknownModel = "unknown_model" // no catalogue entry in force for provider/model/tier at event_time
	ReasonFXMissing    = "fx_missing"    // no rate on or before the event's date for the pair
	ReasonInvalidUsage = "invalid_usage" // negative counts or a subset larger than its total (invariant 4)
	ReasonCostOverflow = "cost_overflow" // a cost beyond what Decimal(38, 12) holds
)

// Error is a permanent pricing failure: the event goes to the DLQ with Reason.
type Error struct {
	Reason string
	Detail string
}

func (e *Error) Error() string { return e.Reason + ": " + e.Detail }

// Permanent says retrying cannot help (internal/retry's classification).
func (e *Error) Permanent() bool { return true }

// Engine prices usage events with effective-dated catalogues, contracts and FX.
// It is immutable after Load and safe for concurrent use (the only mutable
// state is a bounded, mutex-guarded cache of pattern matches per provider).
type Engine struct {
	cat       *catalogue
	contracts []*contract
	fx        fxTable
	// fxMaxAgeDays: a rate more days older than the event flags it fx_stale.
	fxMaxAgeDays int64
}

// maxPatternCache bounds the pattern-match cache so a flood of garbage model
// names cannot grow memory; past it, lookups still work, uncached.
const maxPatternCache = 4096

// Load reads the files named by cfg; resolve maps a config path to a file path
// (relative to the config file). Every problem in every file is reported.
func Load(cfg Config, resolve func(string) string) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if resolve == nil {
		resolve = func(p string) string { return p }
	}
	var files []*CatalogueFile
	var names []string
	var errs []error
	for _, p := range cfg.Catalogues {
		f, err := ReadCatalogue(resolve(p))
		if err != nil {
			errs = append(errs, fmt.Errorf("catalogue: %w", err))
			continue
		}
		files, names = append(files, f), append(names, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var contracts *ContractsFile
	if cfg.Contracts != "" {
		f, err := ReadContracts(resolve(cfg.Contracts))
		if err != nil {
			return nil, fmt.Errorf("contracts: %w", err)
		}
		contracts = f
	}
	var fx *FXFile
	if cfg.FX != "" {
		f, err := ReadFX(resolve(cfg.FX))
		if err != nil {
			return nil, fmt.Errorf("fx: %w", err)
		}
		fx = f
	}
	e, err := New(files, names, contracts, fx)
	if err != nil {
		return nil, err
	}
	e.fxMaxAgeDays = cfg.fxMaxAgeDays()
	return e, nil
}

// New builds an engine from parsed files (names label catalogue errors).
// contracts and fx may be nil.
func New(catalogues []*CatalogueFile, names []string, contracts *ContractsFile, fx *FXFile) (*Engine, error) {
	for len(names) < len(catalogues) {
		names = append(names, fmt.Sprintf("catalogue[%d]", len(names)))
	}
	cat, err := buildCatalogue(catalogues, names)
	if err != nil {
		return nil, fmt.Errorf("catalogue: %w", err)
	}
	e := &Engine{cat: cat, fx: fxTable{}, fxMaxAgeDays: int64(DefaultFXMaxAge / (24 * time.Hour))}
	if contracts != nil {
		if e.contracts, err = buildContracts(contracts, cat); err != nil {
			return nil, fmt.Errorf("contracts: %w", err)
		}
	}
	if fx != nil {
		if e.fx, err = buildFX(fx); err != nil {
			return nil, fmt.Errorf("fx: %w", err)
		}
	}
	return e, nil
}

// PricingCurrency is the currency of every catalogue price (USD by default).
func (e *Engine) PricingCurrency() string { return e.cat.currency }

// lower avoids an allocation for names that are already lower-case.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

func (c *catalogue) canonicalProvider(p string) string {
	if a, ok := c.providerAlias[p]; ok {
		return a
	}
	return p
}

// resolve finds the history of provider/model: exact names and aliases first,
// then patterns in catalogue order.
func (e *Engine) resolve(provider, model string) *history {
	pi := e.cat.providers[provider]
	if pi == nil {
		return nil
	}
	if h := pi.byName[model]; h != nil {
		return h
	}
	if len(pi.patterns) == 0 {
		return nil
	}
	if m := pi.matched.Load(); m != nil {
		if h, ok := (*m)[model]; ok {
			return h
		}
	}
	var found *history
	for _, p := range pi.patterns {
		if p.re.MatchString(model) {
			found = p.h
			break
		}
	}
	pi.remember(model, found)
	return found
}

var tierNames = [...]string{event.ServiceTierStandard, event.ServiceTierBatch, event.ServiceTierFlex, event.ServiceTierPriority}

// tierIndex maps a service tier to its slot (0..3); -1 when unknown.
func tierIndex(t string) int {
	switch t {
	case "", event.ServiceTierStandard:
		return 0
	case event.ServiceTierBatch:
		return 1
	case event.ServiceTierFlex:
		return 2
	case event.ServiceTierPriority:
		return 3
	}
	return -1
}

// match is everything Price resolved before doing arithmetic.
type match struct {
	entry    *entry
	tier     *tierPrice
	contract *contract
	con      *rateSet // contracted rates; == tier.list without a contract
	provider string
	model    string
}

func (e *Engine) find(ev *event.UsageEvent) (match, *Error) {
	var m match
	m.provider = e.cat.canonicalProvider(lower(ev.Provider))
	model := lower(ev.Model)
	h := e.resolve(m.provider, model)
	if h == nil {
		return m, &Error{Reason: ReasonUnknownModel, Detail: fmt.Sprintf("no catalogue entry for provider %q model %q", ev.Provider, ev.Model)}
	}
	m.model = h.model
	ms := ev.EventTime.UnixMilli()
	m.entry = h.inForce(ms)
	if m.entry == nil {
		return m, &Error{Reason: ReasonUnknownModel, Detail: fmt.Sprintf("no price for %s/%s in force at %s", h.provider, h.model, ev.EventTime.UTC().Format(time.RFC3339Nano))}
	}
	ti := tierIndex(ev.ServiceTier)
	if ti < 0 {
		return m, &Error{Reason: ReasonUnknownModel, Detail: fmt.Sprintf("unknown service tier %q", ev.ServiceTier)}
	}
	long := m.entry.longThreshold > 0 && ev.InputTokens > m.entry.longThreshold
	if long {
		ti += len(tierNames)
	}
	m.tier = m.entry.tierByIndex[ti]
	if m.tier == nil {
		name := tierNames[ti%len(tierNames)]
		if long {
			name += LongContextSuffix
		}
		return m, &Error{Reason: ReasonUnknownModel, Detail: fmt.Sprintf("%s/%s has no %s price in force at %s (price %s)",
			h.provider, h.model, name, ev.EventTime.UTC().Format(time.RFC3339Nano), m.entry.anyPriceID())}
	}
	m.con = m.tier.list
	for _, k := range e.contracts {
		if !k.matches(ev.Tenant, m.provider, m.model, ms) {
			continue
		}
		if rs := k.rates[m.tier]; rs != nil {
			m.contract, m.con = k, rs
			break
		}
	}
	return m, nil
}

func (en *entry) anyPriceID() string {
	for _, t := range en.tierByIndex {
		if t != nil {
			return t.priceID
		}
	}
	return ""
}

// checkCounts enforces invariant 4 without allocating on the happy path:
// counts are non-negative and no subset exceeds its total. Inconsistent counts
// are refused, never "fixed".
func checkCounts(ev *event.UsageEvent) *Error {
	u := ev.Units
	if ev.InputTokens < 0 || ev.CacheReadInputTokens < 0 || ev.CacheWriteInputTokens < 0 || ev.CacheWrite1hInputTokens < 0 ||
		ev.OutputTokens < 0 || ev.ReasoningTokens < 0 || u.Images < 0 || u.AudioSeconds < 0 || u.Requests < 0 || u.ToolCalls < 0 || u.WebSearches < 0 {
		return &Error{Reason: ReasonInvalidUsage, Detail: "a token or unit count is negative"}
	}
	// Each operand is non-negative, so the sum only overflows for absurd input; treat that as inconsistent too.
	if s := ev.CacheReadInputTokens + ev.CacheWriteInputTokens; s < 0 || s > ev.InputTokens {
		return &Error{Reason: ReasonInvalidUsage, Detail: fmt.Sprintf("cache_read_input_tokens (%d) + cache_write_input_tokens (%d) exceed input_tokens (%d)",
			ev.CacheReadInputTokens, ev.CacheWriteInputTokens, ev.InputTokens)}
	}
	if ev.CacheWrite1hInputTokens > ev.CacheWriteInputTokens {
		return &Error{Reason: ReasonInvalidUsage, Detail: fmt.Sprintf("cache_write_1h_input_tokens (%d) exceeds cache_write_input_tokens (%d)",
			ev.CacheWrite1hInputTokens, ev.CacheWriteInputTokens)}
	}
	if ev.ReasoningTokens > ev.OutputTokens {
		return &Error{Reason: ReasonInvalidUsage, Detail: fmt.Sprintf("reasoning_tokens (%d) exceeds output_tokens (%d)", ev.ReasoningTokens, ev.OutputTokens)}
	}
	return nil
}

// quantitiesOf splits the event's counts into disjoint billable quantities:
//
//	uncached input  = input - cache_read - cache_write
//	cache write 5m  = cache_write - cache_write_1h
//	non-reasoning   = output - reasoning
func quantitiesOf(ev *event.UsageEvent) quantities {
	return quantities{
		slotInput:        ev.InputTokens - ev.CacheReadInputTokens - ev.CacheWriteInputTokens,
		slotCacheRead:    ev.CacheReadInputTokens,
		slotCacheWrite:   ev.CacheWriteInputTokens - ev.CacheWrite1hInputTokens,
		slotCacheWrite1h: ev.CacheWrite1hInputTokens,
		slotOutput:       ev.OutputTokens - ev.ReasoningTokens,
		slotReasoning:    ev.ReasoningTokens,
		slotImage:        ev.Units.Images,
		slotAudioSecond:  ev.Units.AudioSeconds,
		slotRequest:      ev.Units.Requests,
		slotToolCall:     ev.Units.ToolCalls,
		slotWebSearch:    ev.Units.WebSearches,
	}
}

// Price fills out's pricing fields (price id, tier, per-class quantities and
// costs, list/contracted/effective cost, FX and billed costs) for ev in the
// tenant's billing currency ("" means the pricing currency). out.UsageEvent
// must already hold ev. A *Error is permanent (DLQ); anything else is a bug.
//
// Effective cost = contracted cost (no credits or commitments are modelled);
// the per-class Cost* fields are effective costs and add up exactly to
// EffectiveCost. FX: the latest rate dated on or before the event's UTC date.
func (e *Engine) Price(ev *event.UsageEvent, billingCurrency string, out *event.PricedUsageEvent) error {
	if err := checkCounts(ev); err != nil {
		return err
	}
	m, perr := e.find(ev)
	if perr != nil {
		return perr
	}
	return e.priceMatch(ev, &m, billingCurrency, out)
}

// priceMatch prices ev's quantities at the catalogue entry, tier and
// contract already chosen in m.
func (e *Engine) priceMatch(ev *event.UsageEvent, m *match, billingCurrency string, out *event.PricedUsageEvent) error {
	cur := m.entry.currency
	if billingCurrency == "" {
		billingCurrency = cur
	}
	var fx *fxPoint
	out.FXStale = false
	if billingCurrency != cur {
		day := floorDiv(ev.EventTime.Unix(), 86400)
		p, ok := e.fx.lookup(cur, billingCurrency, day)
		if !ok {
			return &Error{Reason: ReasonFXMissing, Detail: fmt.Sprintf("no %s/%s rate on or before %s (UTC)", cur, billingCurrency, ev.EventTime.UTC().Format(time.DateOnly))}
		}
		fx = p
		// The latest rate is used however old it is, but an old one means
		// the rate file was not updated: say so on the event.
		out.FXStale = day-p.day > e.fxMaxAgeDays
	}

	q := quantitiesOf(ev)
	out.PriceID = m.tier.priceID
	out.PriceSource = m.entry.version
	out.PricingTier = m.tier.name
	out.ContractID = ""
	if m.contract != nil {
		out.ContractID = m.contract.id
	}
	out.UncachedInputTokens = q[slotInput]
	out.NonReasoningOutTokens = q[slotOutput]
	out.PricingCurrency = cur
	out.BillingCurrency = billingCurrency
	if fx != nil {
		out.FXRate, out.FXDate = fx.stored, fx.date
	} else {
		out.FXRate, out.FXDate = money.FromInt(1), ev.EventTime.UTC().Format(time.DateOnly)
	}
	if !e.priceFixed(m, &q, fx, out) && !priceDecimal(m, &q, fx, out) {
		return &Error{Reason: ReasonCostOverflow, Detail: "a cost of this event is beyond Decimal(38, 12) (token or unit counts implausibly large)"}
	}
	out.PricedAt = Now().UTC()
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && (a < 0) {
		q--
	}
	return q
}

// priceFixed is the hot path: int64 multiples of 10^-costScale, exact. It
// returns false (having written nothing) when a rate is not representable or
// an intermediate would overflow; priceDecimal then does the same arithmetic.
func (e *Engine) priceFixed(m *match, q *quantities, fx *fxPoint, out *event.PricedUsageEvent) bool {
	list, con := m.tier.list, m.con
	if !list.fixed || !con.fixed || (fx != nil && !fx.fixed) {
		return false
	}
	lc, ok := list.costsFixed(q)
	if !ok {
		return false
	}
	cc := lc
	if con != list {
		if cc, ok = con.costsFixed(q); !ok {
			return false
		}
	}
	var listTotal, conTotal, units int64
	for i := range lc {
		if listTotal, ok = addFixed(listTotal, lc[i]); !ok {
			return false
		}
		if conTotal, ok = addFixed(conTotal, cc[i]); !ok {
			return false
		}
	}
	for i := slotImage; i < nSlots; i++ {
		units += cc[i] // bounded by conTotal, cannot overflow
	}
	// Savings of cache reads at list price: reads × (input rate − read rate).
	diff := list.f[slotInput] - list.f[slotCacheRead]
	neg := diff < 0
	if neg {
		diff = -diff
	}
	savings, ok := mulFixed(q[slotCacheRead], diff)
	if !ok {
		return false
	}
	if neg {
		savings = -savings
	}
	// Each amount is rounded once, half to even, from its exact value to
	// money.Scale (billed amounts from the exact cost × the exact rate).
	var bList, bCon, bSavings money.Amount
	if fx != nil {
		bList = billFixed(listTotal, fx)
		bCon = bList
		if con != list {
			bCon = billFixed(conTotal, fx)
		}
		bSavings = billFixed(savings, fx)
	}
	lcls := classesFixed(&lc) // list class costs are not stored, only their sum
	ccls := classesFixed(&cc)
	out.CostInput, out.CostCacheRead, out.CostCacheWrite = ccls[0], ccls[1], ccls[2]
	out.CostOutput, out.CostReasoning, out.CostUnits = ccls[3], ccls[4], ccls[5]
	out.ListCost = sumClasses(&lcls)
	out.ContractedCost = sumClasses(&ccls)
	out.EffectiveCost = out.ContractedCost
	out.CacheSavings = money.Scaled(savings, costScale)
	if fx == nil {
		out.BilledListCost, out.BilledContractedCost = out.ListCost, out.ContractedCost
		out.BilledEffectiveCost, out.BilledCacheSavings = out.EffectiveCost, out.CacheSavings
	} else {
		out.BilledListCost, out.BilledContractedCost = bList, bCon
		out.BilledEffectiveCost, out.BilledCacheSavings = bCon, bSavings
	}
	return true
}

// billFixed converts an exact fixed-point amount (10^-costScale units) with
// the FX rate, rounding the exact product once to money.Scale.
func billFixed(v int64, fx *fxPoint) money.Amount {
	hi, lo := bits.Mul64(uabs(v), uint64(fx.coef))
	a, ok := money.Scaled128(v < 0, hi, lo, costScale+fx.scale)
	if !ok { // beyond Decimal(38, 12): cannot happen for an int64 cost × an int64 rate
		a, _ = money.FromDecimal(decimal.New(v, -costScale).Mul(fx.rate))
	}
	return a
}

// The stored classes of cost: input, cache read, cache write (5 min + 1 h),
// output, reasoning, units. A total is the sum of its ROUNDED classes, so
// cost_input + … + cost_units = effective_cost holds exactly in every table.
const nClasses = 6

// classesFixed rounds each class of exact fixed-point costs c once.
func classesFixed(c *[nSlots]int64) (out [nClasses]money.Amount) {
	var units int64
	for i := slotImage; i < nSlots; i++ {
		units += c[i]
	}
	out[0] = money.Scaled(c[slotInput], costScale)
	out[1] = money.Scaled(c[slotCacheRead], costScale)
	out[2] = money.Scaled(c[slotCacheWrite]+c[slotCacheWrite1h], costScale)
	out[3] = money.Scaled(c[slotOutput], costScale)
	out[4] = money.Scaled(c[slotReasoning], costScale)
	out[5] = money.Scaled(units, costScale)
	return out
}

func sumClasses(c *[nClasses]money.Amount) money.Amount {
	var t money.Amount
	for _, a := range c {
		t = t.Add(a)
	}
	return t
}

func uabs(v int64) uint64 {
	if v < 0 {
		return uint64(-v)
	}
	return uint64(v)
}

// priceDecimal is the reference arithmetic in shopspring/decimal; the fast
// path must agree with it exactly (see the property test).
func priceDecimal(m *match, q *quantities, fx *fxPoint, out *event.PricedUsageEvent) bool {
	list, con := m.tier.list, m.con
	lc := list.costsDecimal(q)
	cc := con.costsDecimal(q)
	listTotal, conTotal, units := decimal.Zero, decimal.Zero, decimal.Zero
	for i := range lc {
		listTotal = listTotal.Add(lc[i])
		conTotal = conTotal.Add(cc[i])
		if i >= slotImage {
			units = units.Add(cc[i])
		}
	}
	savings := decimal.NewFromInt(q[slotCacheRead]).Mul(list.d[slotInput].Sub(list.d[slotCacheRead]))
	// Rounded once from the exact decimal, as priceFixed does; an amount
	// beyond Decimal(38, 12) is refused (ok false) rather than wrapped.
	ok := true
	r := func(d decimal.Decimal) money.Amount {
		a, fits := money.FromDecimal(d)
		ok = ok && fits
		return a
	}
	classes := func(c *[nSlots]decimal.Decimal) [nClasses]money.Amount {
		u := decimal.Zero
		for i := slotImage; i < nSlots; i++ {
			u = u.Add(c[i])
		}
		return [nClasses]money.Amount{r(c[slotInput]), r(c[slotCacheRead]), r(c[slotCacheWrite].Add(c[slotCacheWrite1h])),
			r(c[slotOutput]), r(c[slotReasoning]), r(u)}
	}
	lcls, ccls := classes(&lc), classes(&cc)
	out.CostInput, out.CostCacheRead, out.CostCacheWrite = ccls[0], ccls[1], ccls[2]
	out.CostOutput, out.CostReasoning, out.CostUnits = ccls[3], ccls[4], ccls[5]
	out.ListCost = sumClasses(&lcls)
	out.ContractedCost = sumClasses(&ccls)
	out.EffectiveCost = out.ContractedCost
	out.CacheSavings = r(savings)
	if fx == nil {
		out.BilledListCost, out.BilledContractedCost = out.ListCost, out.ContractedCost
		out.BilledEffectiveCost, out.BilledCacheSavings = out.EffectiveCost, out.CacheSavings
		return ok
	}
	out.BilledListCost = r(listTotal.Mul(fx.rate))
	out.BilledContractedCost = r(conTotal.Mul(fx.rate))
	out.BilledEffectiveCost = out.BilledContractedCost
	out.BilledCacheSavings = r(savings.Mul(fx.rate))
	return ok
}

// Now is the engine's clock for priced_at; tests may replace it.
var Now = time.Now
