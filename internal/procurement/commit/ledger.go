package commit

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Ledger draws priced usage down against commitments and credits. It is safe
// for concurrent use.
type Ledger struct {
	file *File
	mu   sync.Mutex
	// drawn per commitment id and period start (credits: one period, start).
	drawn map[string]map[time.Time]decimal.Decimal
	// balance of each credit.
	balance map[string]decimal.Decimal
	// credits sorted soonest expiry first: usage draws the one expiring first.
	credits []*Commitment
	// uncovered is usage of a credit-covered scope once its credits ran out.
	uncovered map[string]decimal.Decimal
}

// New builds a ledger (f must be valid).
func New(f *File) (*Ledger, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	l := &Ledger{file: f, drawn: map[string]map[time.Time]decimal.Decimal{}, balance: map[string]decimal.Decimal{},
		uncovered: map[string]decimal.Decimal{}}
	for i := range f.Commitments {
		c := &f.Commitments[i]
		l.drawn[c.ID] = map[time.Time]decimal.Decimal{}
		if c.Kind == KindCredit {
			l.balance[c.ID] = c.Amount.D
			l.credits = append(l.credits, c)
		}
	}
	sort.SliceStable(l.credits, func(i, j int) bool { return l.credits[i].expiry.Before(l.credits[j].expiry) })
	return l, nil
}

// canonicalModel is the catalogue model of a priced event: its price_id is
// provider/model/tier@valid_from.
func canonicalModel(ev *event.PricedUsageEvent) (model, tier string) {
	parts := strings.Split(ev.PriceID, "/")
	if len(parts) >= 3 {
		model = strings.Join(parts[1:len(parts)-1], "/")
	}
	tier = strings.TrimSuffix(ev.PricingTier, "_long_context")
	if model == "" {
		model = strings.ToLower(ev.Model)
	}
	return model, tier
}

func contains(list []string, v string) bool {
	if len(list) == 0 {
		return true
	}
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

func (c *Commitment) covers(tenant, provider, model, tier string, at time.Time) bool {
	return strings.EqualFold(c.Provider, provider) && !at.Before(c.start) && at.Before(c.expiry) &&
		contains(c.AppliesTo.Tenants, tenant) && contains(c.AppliesTo.Models, model) && contains(c.AppliesTo.Tiers, tier)
}

// periodOf is the commitment period containing at: [start, end).
func (c *Commitment) periodOf(at time.Time) (time.Time, time.Time) {
	if c.Kind == KindCredit {
		return c.start, c.expiry
	}
	k := months(c.Period)
	s := c.start
	for {
		e := s.AddDate(0, k, 0)
		if e.After(c.expiry) {
			e = c.expiry
		}
		if at.Before(e) {
			return s, e
		}
		s = e
	}
}

// Apply draws one priced event (its effective cost in the pricing currency).
// Commitments count the spend in their period; credits are consumed soonest
// expiry first, the rest is uncovered.
func (l *Ledger) Apply(ev *event.PricedUsageEvent) {
	model, tier := canonicalModel(ev)
	l.ApplyCost(ev.Tenant, ev.Provider, model, tier, ev.EventTime, ev.PricingCurrency, ev.EffectiveCost.Decimal())
}

// ApplyCost draws cost of usage of tenant on provider/model/tier at at.
func (l *Ledger) ApplyCost(tenant, provider, model, tier string, at time.Time, currency string, cost decimal.Decimal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rest := cost
	for i := range l.file.Commitments {
		c := &l.file.Commitments[i]
		if c.Kind != KindCommitment || c.Currency != currency || !c.covers(tenant, provider, model, tier, at) {
			continue
		}
		s, _ := c.periodOf(at)
		l.drawn[c.ID][s] = l.drawn[c.ID][s].Add(cost)
	}
	covered := false
	for _, c := range l.credits {
		if c.Currency != currency || !c.covers(tenant, provider, model, tier, at) {
			continue
		}
		covered = true
		b := l.balance[c.ID]
		if !rest.IsPositive() || !b.IsPositive() {
			continue
		}
		use := decimal.Min(b, rest)
		l.balance[c.ID] = b.Sub(use)
		l.drawn[c.ID][c.start] = l.drawn[c.ID][c.start].Add(use)
		rest = rest.Sub(use)
	}
	if covered && rest.IsPositive() {
		l.uncovered[strings.ToLower(provider)] = l.uncovered[strings.ToLower(provider)].Add(rest)
	}
}

// Status is one commitment's position at an instant.
type Status struct {
	ID, Kind, Provider, Currency string
	PeriodStart, PeriodEnd       time.Time
	Amount                       decimal.Decimal // per period (credit: granted)
	Drawn                        decimal.Decimal // this period (credit: in total)
	Remaining                    decimal.Decimal // Amount − Drawn, ≥ 0
	// BurnPerDay is Drawn over the elapsed part of the period, per day;
	// Projected is Drawn at that rate over the whole period. Both are
	// estimates, rounded to 12 decimals (the money itself never is).
	BurnPerDay decimal.Decimal
	Projected  decimal.Decimal
	// ProjectedUnused: a commitment's projected shortfall, or a credit's
	// balance projected to be left at expiry (0 when none).
	ProjectedUnused decimal.Decimal
	// ProjectedExhausted: when a credit runs out at this burn rate, if
	// before expiry.
	ProjectedExhausted *time.Time
	Active             bool
}

// Status of every commitment at at (in file order).
func (l *Ledger) Status(at time.Time) []Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Status
	for i := range l.file.Commitments {
		out = append(out, l.status(&l.file.Commitments[i], at))
	}
	return out
}

func (l *Ledger) status(c *Commitment, at time.Time) Status {
	s := Status{ID: c.ID, Kind: c.Kind, Provider: c.Provider, Currency: c.Currency, Amount: c.Amount.D,
		Active: !at.Before(c.start) && at.Before(c.expiry)}
	clamp := at
	if clamp.Before(c.start) {
		clamp = c.start
	}
	if !clamp.Before(c.expiry) {
		clamp = c.expiry.Add(-time.Nanosecond)
	}
	s.PeriodStart, s.PeriodEnd = c.periodOf(clamp)
	s.Drawn = l.drawn[c.ID][s.PeriodStart]
	s.Remaining = decimal.Max(decimal.Zero, s.Amount.Sub(s.Drawn))
	elapsed := at.Sub(s.PeriodStart)
	if at.After(s.PeriodEnd) {
		elapsed = s.PeriodEnd.Sub(s.PeriodStart)
	}
	whole := s.PeriodEnd.Sub(s.PeriodStart)
	if elapsed <= 0 {
		s.Projected = s.Drawn
	} else {
		el := decimal.NewFromInt(int64(elapsed / time.Second))
		s.BurnPerDay = s.Drawn.Mul(decimal.NewFromInt(86400)).DivRound(el, 12)
		s.Projected = s.Drawn.Mul(decimal.NewFromInt(int64(whole/time.Second))).DivRound(el, 12)
	}
	s.ProjectedUnused = decimal.Max(decimal.Zero, s.Amount.Sub(s.Projected))
	if c.Kind == KindCredit && s.BurnPerDay.IsPositive() && s.Remaining.IsPositive() {
		days := s.Remaining.DivRound(s.BurnPerDay, 6)
		t := at.Add(time.Duration(days.Mul(decimal.NewFromInt(int64(24 * time.Hour))).IntPart()))
		if t.Before(c.expiry) {
			s.ProjectedExhausted = &t
		}
	}
	return s
}

// Alert kinds.
const (
	AlertShortfall      = "commitment_shortfall_projected"
	AlertCreditExpiring = "credit_expiring_unused"
	AlertCreditRunsOut  = "credit_exhausted_before_expiry"
)

// Alert is one commitment alert.
type Alert struct {
	Kind, CommitmentID, Provider string
	At                           time.Time
	Amount                       decimal.Decimal // the projected unused amount (exhaustion: the remaining balance)
	Currency                     string
	Message                      string
}

// Alerts evaluates the thresholds at at.
func (l *Ledger) Alerts(at time.Time) []Alert {
	var out []Alert
	th := l.file.Alerts
	for _, s := range l.Status(at) {
		if !s.Active {
			continue
		}
		switch s.Kind {
		case KindCommitment:
			limit := s.Amount.Mul(th.ShortfallPercent.D).Div(decimal.NewFromInt(100))
			if s.ProjectedUnused.GreaterThan(limit) {
				out = append(out, Alert{Kind: AlertShortfall, CommitmentID: s.ID, Provider: s.Provider, At: at, Amount: s.ProjectedUnused,
					Currency: s.Currency, Message: fmt.Sprintf("projected %s of %s %s this period (burn %s/day): %s short",
						s.Projected.Round(2), s.Amount, s.Currency, s.BurnPerDay.Round(2), s.ProjectedUnused.Round(2))})
			}
		case KindCredit:
			if s.ProjectedUnused.IsPositive() && s.PeriodEnd.Sub(at) <= time.Duration(th.ExpiryDays)*24*time.Hour {
				out = append(out, Alert{Kind: AlertCreditExpiring, CommitmentID: s.ID, Provider: s.Provider, At: at, Amount: s.ProjectedUnused,
					Currency: s.Currency, Message: fmt.Sprintf("%s %s of credit projected unused at expiry %s",
						s.ProjectedUnused.Round(2), s.Currency, s.PeriodEnd.Format(time.DateOnly))})
			}
			if s.ProjectedExhausted != nil {
				out = append(out, Alert{Kind: AlertCreditRunsOut, CommitmentID: s.ID, Provider: s.Provider, At: at, Amount: s.Remaining,
					Currency: s.Currency, Message: fmt.Sprintf("credit runs out about %s, before expiry %s; usage after is billed on demand",
						s.ProjectedExhausted.Format(time.DateOnly), s.PeriodEnd.Format(time.DateOnly))})
			}
		}
	}
	return out
}

// Advice is what the budget decision API may add to its answer: a model
// whose commitment would otherwise go unused.
type Advice struct {
	CommitmentID    string
	Provider        string
	Model           string // "" = any model of Provider
	ProjectedUnused decimal.Decimal
	Currency        string
	Reason          string
}

// Advise returns advice for a request of tenant to provider/model at at, or
// nil: when a commitment or credit that does not cover this request is
// projected to go partly unused, it names that commitment's provider and
// (first) model. The largest projected unused amount wins.
func (l *Ledger) Advise(tenant, provider, model string, at time.Time) *Advice {
	var best *Advice
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.file.Commitments {
		c := &l.file.Commitments[i]
		if at.Before(c.start) || !at.Before(c.expiry) || !contains(c.AppliesTo.Tenants, tenant) {
			continue
		}
		if c.covers(tenant, provider, model, "", at) || (strings.EqualFold(c.Provider, provider) && contains(c.AppliesTo.Models, model)) {
			continue // this request already draws on it
		}
		s := l.status(c, at)
		if !s.ProjectedUnused.IsPositive() || (best != nil && !s.ProjectedUnused.GreaterThan(best.ProjectedUnused)) {
			continue
		}
		a := &Advice{CommitmentID: c.ID, Provider: c.Provider, ProjectedUnused: s.ProjectedUnused, Currency: c.Currency}
		if len(c.AppliesTo.Models) > 0 {
			a.Model = c.AppliesTo.Models[0]
		}
		a.Reason = fmt.Sprintf("%s %s of %s projected unused by %s", s.ProjectedUnused.Round(2), c.Currency, c.ID, s.PeriodEnd.Format(time.DateOnly))
		best = a
	}
	return best
}
