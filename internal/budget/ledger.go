package budget

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// Alert kinds.
const (
	KindThreshold        = "threshold"
	KindProjectedOverrun = "projected_overrun"
)

var hundred = decimal.NewFromInt(100)

// AttrRequestID is the usage-event attribute that names the reservation an
// event settles when its event_id cannot be the check's request_id (for
// example spans whose event id is derived from the span id).
const AttrRequestID = "budget.request_id"

// AttrAPIKey is the usage-event attribute naming the gateway API key a call
// was made with; budgets scoped by api_key count events carrying it.
const AttrAPIKey = "tokenmeter.api_key"

// definition is a validated budget with its tenant resolved.
type definition struct {
	ID         string
	Tenant     *tenant.Tenant
	Scope      Scope
	PeriodKind string
	Amount     decimal.Decimal
	Unit       string
	Currency   string // the reporting currency, or "tokens"
	Thresholds []decimal.Decimal
	Mode       string
	Owner      string
	Projection ProjectionConfig
	Webhooks   []WebhookConfig
	// NotReadyPolicy is this budget's fail-open/fail-closed (resolved).
	NotReadyPolicy string
}

func newDefinition(c BudgetConfig, t *tenant.Tenant) *definition {
	d := &definition{
		ID: c.ID, Tenant: t, Scope: c.Scope, PeriodKind: c.Period, Unit: c.Unit,
		Mode: c.Mode, Owner: c.Owner, Projection: c.Projection, Webhooks: c.Webhooks,
		NotReadyPolicy: c.NotReadyPolicy,
	}
	d.Amount, _ = decimal.NewFromString(c.Amount) // validated
	for _, s := range c.Thresholds {
		v, _ := decimal.NewFromString(s)
		d.Thresholds = append(d.Thresholds, v)
	}
	sort.Slice(d.Thresholds, func(i, j int) bool { return d.Thresholds[i].LessThan(d.Thresholds[j]) })
	d.Currency = t.ReportingCurrency
	if c.Unit == UnitTokens {
		d.Currency = UnitTokens
	}
	return d
}

// applies reports whether an event or request with these attributes counts
// against the budget. The tenant is matched by the caller.
func (d *definition) applies(workflow, team, user, apiKey string) bool {
	s := d.Scope
	return (s.Workflow == "" || s.Workflow == workflow) &&
		(s.Team == "" || s.Team == team) &&
		(s.User == "" || s.User == user) &&
		(s.APIKey == "" || s.APIKey == apiKey)
}

// cost is what an event costs in the budget's unit; ok is false when the
// event is priced in neither the budget's currency nor the pricing currency.
func (d *definition) cost(ev *event.PricedUsageEvent) (decimal.Decimal, bool) {
	switch {
	case d.Unit == UnitTokens:
		return decimal.NewFromInt(ev.InputTokens + ev.OutputTokens), true
	case ev.BillingCurrency == d.Currency:
		return ev.BilledEffectiveCost.Decimal(), true
	case ev.PricingCurrency == d.Currency:
		return ev.EffectiveCost.Decimal(), true
	}
	return decimal.Zero, false
}

// budgetState is one budget's accounting. mu guards everything in it and is
// held for the whole of a check-and-reserve, so concurrent callers see each
// other's reservations.
type budgetState struct {
	def *definition

	mu       sync.Mutex
	periods  map[string]*periodState
	reserved decimal.Decimal // sum of outstanding reservations
	nres     int
	cur      *periodState // cache of current(); dropped with its period

	// Fail-open admissions: total, and the start (unix ms) of the current
	// not-ready episode with at least one (0 = none since ready).
	failOpens    atomic.Int64
	failOpenFrom atomic.Int64
}

// periodState is a budget's spend in one calendar period.
type periodState struct {
	period     period
	spent      decimal.Decimal
	events     int64
	byWorkflow map[string]decimal.Decimal
	byModel    map[string]decimal.Decimal
	crossed    []crossing
	next       int  // index of the lowest threshold not yet crossed
	projected  bool // projected-overrun alert raised (or no longer meaningful)
}

// crossing is a threshold (or projection) crossed by the event that crossed it.
type crossing struct {
	Kind      string          `json:"kind"`
	Threshold decimal.Decimal `json:"threshold"`
	Spend     decimal.Decimal `json:"spend"`
	EventTime time.Time       `json:"event_time"`
	AlertID   string          `json:"alert_id"`
}

func (b *budgetState) periodFor(p period) *periodState {
	ps := b.periods[p.ID]
	if ps == nil {
		ps = &periodState{period: p, byWorkflow: map[string]decimal.Decimal{}, byModel: map[string]decimal.Decimal{}}
		b.periods[p.ID] = ps
	}
	return ps
}

// current returns the state of the period containing now. The last answer
// is cached: computing a calendar period in a time zone is the most
// expensive part of a decision otherwise.
func (b *budgetState) current(now time.Time) *periodState {
	if c := b.cur; c != nil && !now.Before(c.period.Start) && now.Before(c.period.End) {
		return c
	}
	b.cur = b.periodFor(periodOf(b.def.PeriodKind, now, b.def.Tenant.Location))
	return b.cur
}

// periodOfEvent returns the state of the period an event at t falls in, or
// nil when that period ended before the previous period (by now) began.
// The common case, an event in the current period, needs no calendar maths.
func (b *budgetState) periodOfEvent(t, now time.Time) *periodState {
	cur := b.current(now)
	if !t.Before(cur.period.Start) && t.Before(cur.period.End) {
		return cur
	}
	loc := b.def.Tenant.Location
	p := periodOf(b.def.PeriodKind, t, loc)
	prev := periodOf(b.def.PeriodKind, cur.period.Start.Add(-time.Nanosecond), loc)
	if !p.End.After(prev.Start) {
		return nil
	}
	return b.periodFor(p)
}

// alertID is the deterministic idempotency key of an alert: budget/period/kind/threshold.
func alertID(budgetID, periodID, kind string, threshold decimal.Decimal) string {
	return budgetID + "/" + periodID + "/" + kind + "/" + threshold.String()
}

// add accounts amt (already in the budget's unit) from ev to ps and returns
// the alerts it triggers. Thresholds are checked in ascending order, so one
// large event crossing 50 and 80 raises both. The projection uses event
// time, not the wall clock, so a replay raises the same alerts.
func (b *budgetState) add(ps *periodState, amt decimal.Decimal, ev *event.PricedUsageEvent, now time.Time) []event.Alert {
	d := b.def
	ps.spent = ps.spent.Add(amt)
	ps.events++
	ps.byWorkflow[ev.Workflow] = ps.byWorkflow[ev.Workflow].Add(amt)
	mk := ev.Provider + "/" + ev.Model
	ps.byModel[mk] = ps.byModel[mk].Add(amt)

	var out []event.Alert
	raise := func(kind string, th decimal.Decimal) {
		c := crossing{Kind: kind, Threshold: th, Spend: ps.spent, EventTime: ev.EventTime,
			AlertID: alertID(d.ID, ps.period.ID, kind, th)}
		ps.crossed = append(ps.crossed, c)
		out = append(out, event.Alert{
			AlertID: c.AlertID, Tenant: d.Tenant.ID, BudgetID: d.ID, Period: ps.period.ID,
			Kind: kind, Threshold: th, Spend: ps.spent, Amount: d.Amount, Currency: d.Currency,
			Mode: d.Mode, Top: ps.top(3), TriggeredAt: now.UTC(), EventTime: ev.EventTime,
		})
	}
	// spent*100 >= threshold*amount, exact.
	used := ps.spent.Mul(hundred)
	for ps.next < len(d.Thresholds) && used.GreaterThanOrEqual(d.Thresholds[ps.next].Mul(d.Amount)) {
		raise(KindThreshold, d.Thresholds[ps.next])
		ps.next++
	}
	if !ps.projected && !d.Projection.Disabled {
		if ps.spent.GreaterThanOrEqual(d.Amount) {
			// Already over: a projection says nothing new.
			ps.projected = true
		} else if overrunProjected(ps, ev.EventTime, d.Projection.MinElapsed, d.Amount) {
			ps.projected = true
			raise(KindProjectedOverrun, hundred)
		}
	}
	return out
}

// projectAt extrapolates the period's spend linearly from its start to at
// onto the whole period: spent × period length / elapsed. ok is false before
// minElapsed has passed.
func projectAt(ps *periodState, at time.Time, minElapsed time.Duration) (decimal.Decimal, bool) {
	elapsed := at.Sub(ps.period.Start)
	if elapsed <= 0 || elapsed < minElapsed {
		return decimal.Zero, false
	}
	if at.After(ps.period.End) {
		return ps.spent, true
	}
	length := ps.period.End.Sub(ps.period.Start)
	return ps.spent.Mul(decimal.NewFromInt(length.Milliseconds())).
		Div(decimal.NewFromInt(elapsed.Milliseconds())), true
}

// overrunProjected reports projectAt(...) > amount without dividing:
// spent × length > amount × elapsed (elapsed > 0).
func overrunProjected(ps *periodState, at time.Time, minElapsed time.Duration, amount decimal.Decimal) bool {
	elapsed := at.Sub(ps.period.Start)
	if elapsed <= 0 || elapsed < minElapsed {
		return false
	}
	if at.After(ps.period.End) {
		return ps.spent.GreaterThan(amount)
	}
	length := ps.period.End.Sub(ps.period.Start)
	return ps.spent.Mul(decimal.NewFromInt(length.Milliseconds())).
		GreaterThan(amount.Mul(decimal.NewFromInt(elapsed.Milliseconds())))
}

// top returns the n largest workflows and the n largest models by spend.
func (ps *periodState) top(n int) []event.Contributor {
	pick := func(kind string, m map[string]decimal.Decimal) []event.Contributor {
		cs := make([]event.Contributor, 0, len(m))
		for k, v := range m {
			cs = append(cs, event.Contributor{Kind: kind, Name: k, Spend: v})
		}
		sort.Slice(cs, func(i, j int) bool {
			if c := cs[i].Spend.Cmp(cs[j].Spend); c != 0 {
				return c > 0
			}
			return cs[i].Name < cs[j].Name
		})
		if len(cs) > n {
			cs = cs[:n]
		}
		return cs
	}
	return append(pick("workflow", ps.byWorkflow), pick("model", ps.byModel)...)
}

// reservation is budget held for one request until its usage event arrives
// or it expires.
type reservation struct {
	id      string
	tenant  string
	budgets []*budgetState // sorted by id

	// mu guards amounts and gone once the reservation is in the ledger's
	// map: a settle (gateway) may rewrite the amounts while the priced
	// event, a release or the expiry takes the reservation out. Lock order:
	// mu before any budget's mu; never with resMu held.
	mu      sync.Mutex
	amounts []decimal.Decimal
	gone    bool
	expires time.Time
}

// take marks r gone and returns its amounts; a later settle leaves it alone.
func (r *reservation) take() []decimal.Decimal {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gone = true
	return r.amounts
}

// ledger holds every budget's state. Accounting (apply) and decisions
// (check) meet here; each budget has its own mutex, and a request touching
// several budgets locks them in id order, so there is no deadlock and the
// check-and-reserve over all of them is atomic.
type ledger struct {
	budgets  []*budgetState // sorted by id
	byID     map[string]*budgetState
	byTenant map[string][]*budgetState // each sorted by id
	now      func() time.Time
	ttl      time.Duration
	// dedupeWindow is how long (by event time) event ids are remembered.
	dedupeWindow time.Duration

	seenMu sync.Mutex
	seen   map[string]time.Time // tenant/event_id → event time, within dedupeWindow; duplicates are not counted twice

	resMu        sync.Mutex
	reservations map[string]*reservation // by tenant/request id

	ready atomic.Bool
	// stale is set while the priced topic cannot be read (broker or
	// partition lost); decisions then follow the not-ready policy.
	stale atomic.Pointer[string]

	// Counters for telemetry and the API.
	duplicates, mismatched, tooLate atomic.Int64
}

func newLedger(defs []*definition, ttl, dedupeWindow time.Duration, now func() time.Time) *ledger {
	l := &ledger{byID: map[string]*budgetState{}, byTenant: map[string][]*budgetState{}, now: now, ttl: ttl, dedupeWindow: dedupeWindow,
		seen: map[string]time.Time{}, reservations: map[string]*reservation{}}
	sort.Slice(defs, func(i, j int) bool { return defs[i].ID < defs[j].ID })
	for _, d := range defs {
		b := &budgetState{def: d, periods: map[string]*periodState{}}
		l.budgets = append(l.budgets, b)
		l.byID[d.ID] = b
		l.byTenant[d.Tenant.ID] = append(l.byTenant[d.Tenant.ID], b)
	}
	return l
}

// oldestStart is the start of the oldest current period over all budgets:
// where a rebuild has to start reading.
func (l *ledger) oldestStart(now time.Time) (time.Time, bool) {
	var oldest time.Time
	for i, b := range l.budgets {
		s := periodOf(b.def.PeriodKind, now, b.def.Tenant.Location).Start
		if i == 0 || s.Before(oldest) {
			oldest = s
		}
	}
	return oldest, len(l.budgets) > 0
}

// apply accounts one priced event against every budget it falls in, settles
// the reservation made under its event id, and returns the alerts it
// triggers. An event id seen before is ignored, so a redelivered event never
// counts twice. Events from before the previous period are ignored.
func (l *ledger) apply(ev *event.PricedUsageEvent) []event.Alert {
	bs := l.byTenant[ev.Tenant]
	if len(bs) == 0 {
		return nil
	}
	now := l.now()
	key := ev.Tenant + "/" + ev.EventID

	l.seenMu.Lock()
	if _, dup := l.seen[key]; dup {
		l.seenMu.Unlock()
		l.duplicates.Add(1)
		return nil
	}
	l.seen[key] = ev.EventTime
	l.seenMu.Unlock()

	resKey := key
	if rid := ev.Attributes[AttrRequestID]; rid != "" {
		resKey = ev.Tenant + "/" + rid
	}
	l.resMu.Lock()
	res := l.reservations[resKey]
	delete(l.reservations, resKey)
	l.resMu.Unlock()
	var resAmounts []decimal.Decimal
	if res != nil {
		resAmounts = res.take()
	}

	var alerts []event.Alert
	ri := 0
	// Walk matched budgets and the reservation's budgets together, both sorted by id.
	for _, b := range bs {
		matched := b.def.applies(ev.Workflow, ev.Team, ev.UserID, ev.Attributes[AttrAPIKey])
		var held decimal.Decimal
		inRes := false
		if res != nil {
			for ri < len(res.budgets) && res.budgets[ri].def.ID < b.def.ID {
				ri++
			}
			if ri < len(res.budgets) && res.budgets[ri] == b {
				inRes, held = true, resAmounts[ri]
			}
		}
		if !matched && !inRes {
			continue
		}
		b.mu.Lock()
		if matched {
			if amt, ok := b.def.cost(ev); !ok {
				l.mismatched.Add(1)
			} else if ps := b.periodOfEvent(ev.EventTime, now); ps != nil {
				alerts = append(alerts, b.add(ps, amt, ev, now)...)
			} else {
				l.tooLate.Add(1)
			}
		}
		if inRes {
			b.reserved = b.reserved.Sub(held)
			b.nres--
		}
		b.mu.Unlock()
	}
	return alerts
}

// CheckRequest is the body of POST /v1/budget/check.
type CheckRequest struct {
	// Tenant is optional; when given it must be the token's tenant.
	Tenant   string `json:"tenant,omitempty"`
	Workflow string `json:"workflow,omitempty"`
	Team     string `json:"team,omitempty"`
	User     string `json:"user,omitempty"`
	// APIKey is the name of the gateway key the call is made with (for
	// budgets scoped by api_key).
	APIKey string `json:"api_key,omitempty"`
	// EstimatedCost is in the tenant's reporting currency. Either it or
	// Model (+Provider, tokens) gives the estimate; with both, EstimatedCost wins.
	EstimatedCost *decimal.Decimal `json:"estimated_cost,omitempty"`
	Provider      string           `json:"provider,omitempty"`
	Model         string           `json:"model,omitempty"`
	ServiceTier   string           `json:"service_tier,omitempty"`
	// Estimated tokens of the call; also the estimate for tokens budgets.
	EstimatedInputTokens  int64 `json:"estimated_input_tokens,omitempty"`
	EstimatedOutputTokens int64 `json:"estimated_output_tokens,omitempty"`
	// Reserve holds the estimate until the usage event with event_id ==
	// RequestID arrives, or ReservationTTL passes.
	Reserve   bool   `json:"reserve,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Decisions.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// CheckResponse is the answer of POST /v1/budget/check.
type CheckResponse struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	// State is "ready", or "not_ready" while the state is rebuilt; then
	// Policy says which not-ready policy decided.
	State  string `json:"state"`
	Policy string `json:"policy,omitempty"`
	// BudgetID, Remaining and Currency describe the binding budget: the one
	// that denied, else the one with the least room left.
	BudgetID  string           `json:"budget_id,omitempty"`
	Remaining *decimal.Decimal `json:"remaining,omitempty"`
	Currency  string           `json:"currency,omitempty"`
	// The estimate the decision used.
	EstimatedCost   decimal.Decimal `json:"estimated_cost"`
	EstimatedTokens int64           `json:"estimated_tokens"`
	RequestID       string          `json:"request_id,omitempty"`
	Reserved        bool            `json:"reserved"`
	ReservedUntil   *time.Time      `json:"reserved_until,omitempty"`
	Budgets         []BudgetVerdict `json:"budgets"`
	// CommitmentAdvice is advisory only (commitment_advice.go).
	CommitmentAdvice *CommitmentAdvice `json:"commitment_advice,omitempty"`
}

// BudgetVerdict is one applicable budget's view of a request.
type BudgetVerdict struct {
	ID        string          `json:"id"`
	Mode      string          `json:"mode"`
	Period    string          `json:"period"`
	Currency  string          `json:"currency"`
	Amount    decimal.Decimal `json:"amount"`
	Spent     decimal.Decimal `json:"spent"`
	Reserved  decimal.Decimal `json:"reserved"`
	Remaining decimal.Decimal `json:"remaining"` // before this request
	Estimate  decimal.Decimal `json:"estimate"`
	Verdict   string          `json:"verdict"` // allow | deny: what this budget alone says
}

// estimate is a request's expected cost in currency and in tokens.
type estimate struct {
	cost   decimal.Decimal
	tokens int64
}

func (e estimate) in(d *definition) decimal.Decimal {
	if d.Unit == UnitTokens {
		return decimal.NewFromInt(e.tokens)
	}
	return e.cost
}

// check decides a request for tenant t and, when asked and allowed,
// reserves the estimate on every applicable budget. All applicable budgets
// are locked (in id order) for the whole decision, so two concurrent checks
// cannot both take the last room of a budget.
//
// A budget allows when remaining > 0 and estimate <= remaining, where
// remaining = amount - spent - reserved in the current period. Admitted
// reservations therefore never exceed the amount; actual spend can exceed it
// only by what calls cost beyond their estimate.
func (l *ledger) check(t *tenant.Tenant, req *CheckRequest, est estimate, policy string) CheckResponse {
	now := l.now()
	resp := CheckResponse{Decision: DecisionAllow, State: "ready", EstimatedCost: est.cost,
		EstimatedTokens: est.tokens, RequestID: req.RequestID}
	ready, why := l.readiness()
	if !ready {
		resp.State, resp.Policy = "not_ready", policy
	}
	var apply []*budgetState
	for _, b := range l.byTenant[t.ID] {
		if b.def.applies(req.Workflow, req.Team, req.User, req.APIKey) {
			apply = append(apply, b)
		}
	}
	resp.Budgets = make([]BudgetVerdict, 0, len(apply))
	for _, b := range apply {
		b.mu.Lock()
	}
	defer func() {
		for _, b := range apply {
			b.mu.Unlock()
		}
	}()

	var (
		denier, tightest *BudgetVerdict
		wouldDeny        []string
	)
	for _, b := range apply {
		d := b.def
		ps := b.current(now)
		remaining := d.Amount.Sub(ps.spent).Sub(b.reserved)
		e := est.in(d)
		v := BudgetVerdict{ID: d.ID, Mode: d.Mode, Period: ps.period.ID, Currency: d.Currency, Amount: d.Amount,
			Spent: ps.spent, Reserved: b.reserved, Remaining: remaining, Estimate: e, Verdict: DecisionAllow}
		if !remaining.IsPositive() || e.GreaterThan(remaining) {
			v.Verdict = DecisionDeny
		}
		resp.Budgets = append(resp.Budgets, v)
		vp := &resp.Budgets[len(resp.Budgets)-1]
		if v.Verdict == DecisionDeny {
			if d.Mode == ModeEnforce && denier == nil {
				denier = vp
			}
			wouldDeny = append(wouldDeny, d.ID)
		}
		// Least room in proportion: remaining/amount < tightest's, cross-multiplied (amounts > 0).
		if tightest == nil || remaining.Mul(tightest.Amount).LessThan(tightest.Remaining.Mul(d.Amount)) {
			tightest = vp
		}
	}
	binding := tightest
	switch {
	case len(apply) == 0:
		resp.Reason = "no budget applies to this tenant/workflow/team/user"
	case denier != nil:
		binding = denier
		resp.Decision = DecisionDeny
		resp.Reason = fmt.Sprintf("budget %s (enforce) for %s has %s %s left; estimate %s does not fit",
			denier.ID, denier.Period, denier.Remaining.StringFixed(2), denier.Currency, denier.Estimate)
	case len(wouldDeny) > 0:
		resp.Reason = fmt.Sprintf("alert mode: would deny (budget %s exhausted for this estimate); allowed", strings.Join(wouldDeny, ", "))
	default:
		resp.Reason = "within budget"
	}
	if binding != nil {
		resp.BudgetID, resp.Currency = binding.ID, binding.Currency
		r := binding.Remaining
		resp.Remaining = &r
	}
	if !ready {
		// Each enforce budget follows its own policy: one fail-closed budget
		// denies; otherwise the call is admitted and every enforce budget
		// that let it through blind counts a fail-open admission.
		applied := PolicyFailOpen
		var open []*budgetState
		for _, b := range apply {
			if b.def.Mode != ModeEnforce {
				continue
			}
			if p := b.def.policy(policy); p == PolicyFailClosed {
				applied = PolicyFailClosed
			} else {
				open = append(open, b)
			}
		}
		if len(apply) == 0 || (len(open) == 0 && applied == PolicyFailOpen) {
			applied = policy // nothing enforced: report the section's policy
		}
		resp.Policy = applied
		if applied == PolicyFailClosed {
			resp.Decision = DecisionDeny
		} else {
			resp.Decision = DecisionAllow
			for _, b := range open {
				b.failOpen(now)
			}
		}
		resp.Reason = fmt.Sprintf("budget state not ready (%s); %s applied; state so far says: %s", why, applied, resp.Reason)
	}
	if req.Reserve && resp.Decision == DecisionAllow && len(apply) > 0 {
		l.reserveLocked(t.ID, req, apply, est, now, &resp)
	}
	return resp
}

// readiness reports whether decisions can trust the state, and why not.
func (l *ledger) readiness() (bool, string) {
	if !l.ready.Load() {
		return false, "rebuilding from the priced topic"
	}
	if why := l.stale.Load(); why != nil {
		return false, *why
	}
	return true, ""
}

// reserveLocked records a reservation; the caller holds every budget's lock.
func (l *ledger) reserveLocked(tenantID string, req *CheckRequest, apply []*budgetState, est estimate, now time.Time, resp *CheckResponse) {
	key := tenantID + "/" + req.RequestID
	l.seenMu.Lock()
	_, settled := l.seen[key]
	l.seenMu.Unlock()
	if settled {
		resp.Reason += "; usage for this request_id is already accounted, nothing reserved"
		return
	}
	l.resMu.Lock()
	defer l.resMu.Unlock()
	if old := l.reservations[key]; old != nil {
		// Idempotent: a retried check keeps its first reservation.
		resp.Reserved, resp.ReservedUntil = true, &old.expires
		return
	}
	r := &reservation{id: req.RequestID, tenant: tenantID, expires: now.Add(l.ttl)}
	for _, b := range apply {
		amt := est.in(b.def)
		r.budgets = append(r.budgets, b)
		r.amounts = append(r.amounts, amt)
		b.reserved = b.reserved.Add(amt)
		b.nres++
	}
	l.reservations[key] = r
	resp.Reserved, resp.ReservedUntil = true, &r.expires
}

// release drops a reservation (explicit release or expiry); false if there was none.
func (l *ledger) release(tenantID, requestID string) bool {
	key := tenantID + "/" + requestID
	l.resMu.Lock()
	r := l.reservations[key]
	delete(l.reservations, key)
	l.resMu.Unlock()
	if r == nil {
		return false
	}
	amounts := r.take()
	for i, b := range r.budgets {
		b.mu.Lock()
		b.reserved = b.reserved.Sub(amounts[i])
		b.nres--
		b.mu.Unlock()
	}
	return true
}

// expire releases reservations past their TTL and forgets periods (and
// event ids) older than the previous period. It returns how many
// reservations expired.
func (l *ledger) expire() int {
	now := l.now()
	l.resMu.Lock()
	var gone []*reservation
	for k, r := range l.reservations {
		if !now.Before(r.expires) {
			gone = append(gone, r)
			delete(l.reservations, k)
		}
	}
	l.resMu.Unlock()
	for _, r := range gone {
		amounts := r.take()
		for i, b := range r.budgets {
			b.mu.Lock()
			b.reserved = b.reserved.Sub(amounts[i])
			b.nres--
			b.mu.Unlock()
		}
	}
	var keepFrom time.Time
	for i, b := range l.budgets {
		cur := periodOf(b.def.PeriodKind, now, b.def.Tenant.Location)
		prev := periodOf(b.def.PeriodKind, cur.Start.Add(-time.Nanosecond), b.def.Tenant.Location)
		b.mu.Lock()
		for id, ps := range b.periods {
			if ps.period.End.Before(prev.Start) || ps.period.End.Equal(prev.Start) {
				delete(b.periods, id)
				if b.cur == ps {
					b.cur = nil
				}
			}
		}
		b.mu.Unlock()
		if i == 0 || prev.Start.Before(keepFrom) {
			keepFrom = prev.Start
		}
	}
	// Event ids are remembered for the dedupe window only (by event time):
	// priced.v1 is exactly-once by the processor's contract, so this is a
	// safeguard sized in memory by window × event rate, not by period.
	if w := now.Add(-l.dedupeWindow); w.After(keepFrom) {
		keepFrom = w
	}
	l.seenMu.Lock()
	for k, t := range l.seen {
		if t.Before(keepFrom) {
			delete(l.seen, k)
		}
	}
	l.seenMu.Unlock()
	return len(gone)
}

// Status is a budget as GET /v1/budgets shows it.
type Status struct {
	ID          string           `json:"id"`
	Tenant      string           `json:"tenant"`
	Scope       Scope            `json:"scope"`
	Mode        string           `json:"mode"`
	Owner       string           `json:"owner,omitempty"`
	Period      string           `json:"period"`
	PeriodStart time.Time        `json:"period_start"`
	PeriodEnd   time.Time        `json:"period_end"`
	Currency    string           `json:"currency"`
	Amount      decimal.Decimal  `json:"amount"`
	Spent       decimal.Decimal  `json:"spent"`
	Reserved    decimal.Decimal  `json:"reserved"`
	Remaining   decimal.Decimal  `json:"remaining"`
	UsedPercent decimal.Decimal  `json:"used_percent"`
	Projected   *decimal.Decimal `json:"projected_period_end,omitempty"`
	// Reservations is the number of outstanding reservations.
	Reservations int                 `json:"reservations"`
	Events       int64               `json:"events"`
	Thresholds   []decimal.Decimal   `json:"thresholds"`
	Crossed      []crossing          `json:"thresholds_crossed"`
	Top          []event.Contributor `json:"top"`
	State        string              `json:"state"`
}

func (l *ledger) status(b *budgetState) Status {
	now := l.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.def
	ps := b.current(now)
	s := Status{ID: d.ID, Tenant: d.Tenant.ID, Scope: d.Scope, Mode: d.Mode, Owner: d.Owner,
		Period: ps.period.ID, PeriodStart: ps.period.Start, PeriodEnd: ps.period.End, Currency: d.Currency,
		Amount: d.Amount, Spent: ps.spent, Reserved: b.reserved, Remaining: d.Amount.Sub(ps.spent).Sub(b.reserved),
		UsedPercent: ps.spent.Mul(hundred).Div(d.Amount).Round(2), Reservations: b.nres, Events: ps.events,
		Thresholds: d.Thresholds, Crossed: append([]crossing{}, ps.crossed...), Top: ps.top(5), State: "ready"}
	if p, ok := projectAt(ps, now, 0); ok {
		p = p.Round(2)
		s.Projected = &p
	}
	if ok, _ := l.readiness(); !ok {
		s.State = "not_ready"
	}
	return s
}
