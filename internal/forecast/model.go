package forecast

import (
	"fmt"
	"sort"

	"github.com/shopspring/decimal"
)

// Scale multiplies drivers for a scenario (sensitivity); a zero field means 1.
type Scale struct {
	Adoption        decimal.Decimal // share of eligible users (capped at 1)
	SessionsPerUser decimal.Decimal
	CallsPerSession decimal.Decimal
	TokensPerCall   decimal.Decimal // every token class
	Price           decimal.Decimal // every unit rate
}

func orOne(d decimal.Decimal) decimal.Decimal {
	if d.IsZero() {
		return one
	}
	return d
}

// Line is one workflow × model × month of the forecast.
type Line struct {
	Workflow, Team string
	Model          string // provider/model; DeniedModel for a budget cap's cut
	Month          Month
	Users          decimal.Decimal // active users (the workflow's, on every model line)
	Sessions       decimal.Decimal // this model's share of the sessions
	Calls          decimal.Decimal
	Tokens         ClassTokens // totals for the month
	PerCall        ClassTokens // the average call priced (after scaling)
	Rates          ClassRates
	FXRate         decimal.Decimal // planning rate pricing currency -> reporting
	CostPricing    decimal.Decimal // in Rates.Currency
	Cost           decimal.Decimal // in the plan's reporting currency
	Outcomes       decimal.Decimal
	Value          decimal.Decimal // outcomes × value per outcome
}

// DeniedModel labels the negative line a budget cap adds for spend it refuses.
const DeniedModel = "(denied by budget cap)"

// Result is a priced forecast.
type Result struct {
	Plan  *Plan
	Lines []Line // ordered by workflow (plan order), month, model
}

// Options change how Build runs.
type Options struct {
	Scale Scale
	// MonthlyCap caps a workflow's monthly cost (reporting currency): spend
	// above it becomes a negative DeniedModel line.
	MonthlyCap map[string]decimal.Decimal
}

// Build prices the plan month by month with eng. Every figure is exact:
//
//	users    = eligible_users × min(1, adoption(m) × scale)
//	sessions = users × sessions_per_user_month
//	calls    = sessions × calls_per_session × model share(m)
//	cost     = calls × Σ_class tokens_per_call(class) × rate(class, model, tier, m) × planning_fx
//
// with rate the contracted price in force at the month's first instant.
func Build(p *Plan, eng Pricer, opt Options) (*Result, error) {
	rc := &rateCache{eng: eng, tenant: p.Tenant}
	res := &Result{Plan: p}
	s := opt.Scale
	var errs []error
	for wi := range p.Workflows {
		w := &p.Workflows[wi]
		tok := w.perCall().Mul(orOne(s.TokensPerCall))
		for m := Month(1); m <= 12; m++ {
			adopt, ok := stepValue(p, w.Adoption, m-Month(w.adoptionShift))
			if !ok || m-Month(w.adoptionShift) < 1 {
				continue
			}
			a := adopt.D.Mul(orOne(s.Adoption))
			if a.GreaterThan(one) {
				a = one
			}
			users := w.EligibleUsers.D.Mul(a)
			sessions := users.Mul(w.SessionsPerUser.D).Mul(orOne(s.SessionsPerUser))
			calls := sessions.Mul(w.CallsPerSession.D).Mul(orOne(s.CallsPerSession))
			mix, ok := stepValue(p, w.ModelMix, m)
			if !ok {
				errs = append(errs, fmt.Errorf("workflow %s: no model mix for %s", w.Name, m.Label(p.Year)))
				continue
			}
			monthCost := decimal.Zero
			for _, model := range sortedKeys(mix) {
				sh := mix[model].D
				if sh.IsZero() {
					continue
				}
				r, err := rc.rates(model, w.ServiceTier, m, p.MonthStart(m), tok)
				if err != nil {
					errs = append(errs, fmt.Errorf("workflow %s: %w", w.Name, err))
					continue
				}
				fx, err := p.fx(r.Currency)
				if err != nil {
					errs = append(errs, fmt.Errorf("workflow %s: %w", w.Name, err))
					continue
				}
				mc := calls.Mul(sh)
				perCall := r.PerCall(tok).Mul(orOne(s.Price))
				l := Line{
					Workflow: w.Name, Team: w.Team, Model: model, Month: m,
					Users: users, Sessions: sessions.Mul(sh), Calls: mc, Tokens: tok.Mul(mc), PerCall: tok, Rates: r, FXRate: fx,
					CostPricing: perCall.Mul(mc),
				}
				l.Cost = l.CostPricing.Mul(fx)
				if w.OutcomesPerSession.Set {
					l.Outcomes = l.Sessions.Mul(w.OutcomesPerSession.D)
					l.Value = l.Outcomes.Mul(w.ValuePerOutcome.D)
				}
				monthCost = monthCost.Add(l.Cost)
				res.Lines = append(res.Lines, l)
			}
			if c, ok := opt.MonthlyCap[w.Name]; ok && monthCost.GreaterThan(c) {
				res.Lines = append(res.Lines, Line{Workflow: w.Name, Team: w.Team, Model: DeniedModel, Month: m, Cost: c.Sub(monthCost)})
			}
		}
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	return res, nil
}

// perCall is the workflow's average call in token classes.
func (w *Workflow) perCall() ClassTokens {
	t := w.Tokens
	return ClassTokens{
		Input:      t.Input.D,
		CacheRead:  t.Input.D.Mul(t.CachedShare.D),
		CacheWrite: t.CacheWrite.D,
		Output:     t.Output.D,
		Reasoning:  t.Reasoning.D,
	}
}

func (p *Plan) fx(cur string) (decimal.Decimal, error) {
	if cur == p.ReportingCurrency {
		return one, nil
	}
	r, ok := p.PlanningFX[cur]
	if !ok {
		return decimal.Zero, fmt.Errorf("planning_fx has no rate for %s (prices are in %s, the plan reports in %s)", cur, cur, p.ReportingCurrency)
	}
	return r.D, nil
}

// Total is the year's cost.
func (r *Result) Total() decimal.Decimal { return r.sum(func(*Line) bool { return true }) }

// MonthTotal is month m's cost.
func (r *Result) MonthTotal(m Month) decimal.Decimal {
	return r.sum(func(l *Line) bool { return l.Month == m })
}

// TotalFrom is the cost of months >= from.
func (r *Result) TotalFrom(from Month) decimal.Decimal {
	return r.sum(func(l *Line) bool { return l.Month >= from })
}

// WorkflowMonth is one workflow's cost in month m.
func (r *Result) WorkflowMonth(w string, m Month) decimal.Decimal {
	return r.sum(func(l *Line) bool { return l.Workflow == w && l.Month == m })
}

func (r *Result) sum(keep func(*Line) bool) decimal.Decimal {
	t := decimal.Zero
	for i := range r.Lines {
		if keep(&r.Lines[i]) {
			t = t.Add(r.Lines[i].Cost)
		}
	}
	return t
}

// WorkflowMonthRow sums a workflow's model lines for one month.
type WorkflowMonthRow struct {
	Workflow, Team                                string
	Month                                         Month
	Users, Sessions, Calls, Outcomes, Value, Cost decimal.Decimal
	Tokens                                        ClassTokens
}

// ByWorkflowMonth sums lines per workflow and month, in plan order then month.
func (r *Result) ByWorkflowMonth() []WorkflowMonthRow {
	idx := map[[2]any]int{}
	var out []WorkflowMonthRow
	for _, l := range r.Lines {
		k := [2]any{l.Workflow, l.Month}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, WorkflowMonthRow{Workflow: l.Workflow, Team: l.Team, Month: l.Month, Users: l.Users})
		}
		o := &out[i]
		o.Sessions = o.Sessions.Add(l.Sessions)
		o.Calls = o.Calls.Add(l.Calls)
		o.Outcomes = o.Outcomes.Add(l.Outcomes)
		o.Value = o.Value.Add(l.Value)
		o.Cost = o.Cost.Add(l.Cost)
		o.Tokens = o.Tokens.Add(l.Tokens)
	}
	order := map[string]int{}
	for i, w := range r.Plan.Workflows {
		order[w.Name] = i
	}
	sort.SliceStable(out, func(i, j int) bool {
		if order[out[i].Workflow] != order[out[j].Workflow] {
			return order[out[i].Workflow] < order[out[j].Workflow]
		}
		return out[i].Month < out[j].Month
	})
	return out
}

func joinErrs(errs []error) error {
	seen := map[string]bool{}
	var out []error
	for _, e := range errs {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return errorsJoin(out)
}

// RatesFor prices one call shape of model on the plan's tier for workflow wf
// in month m, with the plan's FX rate (for the variance bridge's calls the
// plan never had).
func RatesFor(p *Plan, eng Pricer, model, tier string, m Month, perCall ClassTokens) (ClassRates, decimal.Decimal, error) {
	rc := &rateCache{eng: eng, tenant: p.Tenant}
	r, err := rc.rates(model, tier, m, p.MonthStart(m), perCall)
	if err != nil {
		return ClassRates{}, decimal.Zero, err
	}
	fx, err := p.fx(r.Currency)
	return r, fx, err
}
