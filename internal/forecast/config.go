// Package forecast is the bottom-up forecast: a plan file per tenant (users,
// adoption, sessions, calls, tokens per call by class, model mix, tier) priced
// month by month with the real pricing engine (internal/pricing) and a planning
// FX rate stated in the plan, giving cost per workflow per month in the
// tenant's reporting currency as exact decimals.
//
// File map:
//
//	config.go       the plan file format, Read, Validate (every problem with its path)
//	month.go        calendar months of the plan year
//	model.go        Build: the priced forecast per workflow, model and month
//	rates.go        per-class unit rates probed from the pricing engine
//	sensitivity.go  the scenario grid (adoption, tokens per call, price, ...)
//	calibrate.go    observed drivers vs planned, and writing them into the plan
//	store.go        approved versions and actuals in ClickHouse
//
// The plan format is documented in docs/forecast.md.
package forecast

import (
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/confload"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// Plan is one tenant's plan file for one calendar year.
type Plan struct {
	// Tenant is the tenant id the plan is for (required).
	Tenant string `yaml:"tenant"`
	// Year is the calendar year planned, months cut in TimeZone (required).
	Year int `yaml:"year"`
	// Scenario names this plan's assumptions ("base", "stretch"); default "base".
	Scenario string `yaml:"scenario,omitempty"`
	// ReportingCurrency is the currency of every amount in the plan and of the
	// output (ISO 4217, required; normally the tenant's reporting currency).
	ReportingCurrency string `yaml:"reporting_currency"`
	// TimeZone cuts months (IANA name); default UTC. Prices in force at the
	// first instant of each month in this zone apply to the whole month.
	TimeZone string `yaml:"time_zone,omitempty"`
	// PlanningFX is the planning rate per pricing currency: 1 unit of the key
	// currency = rate units of ReportingCurrency. It is the plan's rate, not the
	// daily rates actuals are converted with. Required for every catalogue
	// currency other than ReportingCurrency.
	PlanningFX map[string]pricing.Amount `yaml:"planning_fx,omitempty"`
	// Workflows are the use cases planned (at least one).
	Workflows []Workflow `yaml:"workflows"`
	// Envelope is the top-down amount the CFO approved (optional; reconcile needs it).
	Envelope *Envelope `yaml:"envelope,omitempty"`

	// raw is the file as read, stored with an approved version.
	raw []byte
}

// Source is the plan file's text as read ("" for a plan built in code).
func (p *Plan) Source() []byte { return p.raw }

// Workflow is one use case's drivers.
type Workflow struct {
	// Name is the workflow as attributed on usage events (required, unique).
	Name string `yaml:"name"`
	// Team owns the workflow; the envelope may be split by team.
	Team string `yaml:"team,omitempty"`
	// EligibleUsers is how many people could use it (>= 0).
	EligibleUsers pricing.Amount `yaml:"eligible_users"`
	// Adoption is the share (0..1) of eligible users active, by month
	// ("2026-03": "0.25"). A listed month sets the share from then on; months
	// before the first listed one have no users. List each step of a ramp.
	Adoption map[string]pricing.Amount `yaml:"adoption"`
	// SessionsPerUser is sessions per active user per month (tasks, tickets, queries).
	SessionsPerUser pricing.Amount `yaml:"sessions_per_user_month"`
	// CallsPerSession is model calls per session: 1 for a chat turn, dozens
	// for an agentic task (fan-out).
	CallsPerSession pricing.Amount `yaml:"calls_per_session"`
	// Tokens is the average call's tokens by class.
	Tokens TokensPerCall `yaml:"tokens_per_call"`
	// ServiceTier is standard (default), batch, flex or priority.
	ServiceTier string `yaml:"service_tier,omitempty"`
	// ModelMix is the share of calls per "provider/model", by month; a listed
	// month sets the mix from then on and its shares must add up to 1.
	ModelMix map[string]map[string]pricing.Amount `yaml:"model_mix"`
	// OutcomesPerSession is business outcomes per session (e.g. 0.8 tickets
	// resolved); optional, for cost per outcome.
	OutcomesPerSession pricing.Amount `yaml:"outcomes_per_session,omitempty"`
	// OutcomeType names the outcome ("ticket_resolved").
	OutcomeType string `yaml:"outcome_type,omitempty"`
	// ValuePerOutcome in ReportingCurrency (e.g. agent time saved); optional.
	ValuePerOutcome pricing.Amount `yaml:"value_per_outcome,omitempty"`
	// adoptionShift delays the adoption curve by this many months (defer lever).
	adoptionShift int
	// Levers are what this workflow's owner would accept to cut cost, each
	// with its cost in user experience in the owner's words (reconcile ranks them).
	Levers []Lever `yaml:"levers,omitempty"`
}

// TokensPerCall is the average call, by token class. Counts may be decimal
// averages (calibration writes them); subsets follow the usage event rules.
type TokensPerCall struct {
	// Input is all input tokens per call, including cache reads and writes.
	Input pricing.Amount `yaml:"input"`
	// CachedShare is the share (0..1) of Input read from the prompt cache.
	CachedShare pricing.Amount `yaml:"cached_share,omitempty"`
	// CacheWrite is input tokens per call written to the cache (5-minute writes).
	CacheWrite pricing.Amount `yaml:"cache_write,omitempty"`
	// Output is all output tokens per call, including reasoning.
	Output pricing.Amount `yaml:"output"`
	// Reasoning is reasoning tokens per call (a subset of Output).
	Reasoning pricing.Amount `yaml:"reasoning,omitempty"`
}

// Lever kinds.
const (
	LeverDefer     = "defer"           // start the workflow Months later
	LeverCut       = "cut"             // drop the workflow
	LeverRoute     = "route"           // move Share of calls to model To
	LeverShorten   = "shorten_prompts" // Percent fewer input tokens per call
	LeverCache     = "cache_hit_rate"  // raise the cached share of input to HitRate
	LeverBudgetCap = "budget_cap"      // cap the workflow's monthly spend at MonthlyCap
)

var leverKinds = []string{LeverDefer, LeverCut, LeverRoute, LeverShorten, LeverCache, LeverBudgetCap}

// Lever is one option a workflow's owner offers.
type Lever struct {
	Kind string `yaml:"kind"`
	// Months to defer (defer).
	Months int `yaml:"months,omitempty"`
	// Share of the workflow's calls moved (route), 0..1.
	Share pricing.Amount `yaml:"share,omitempty"`
	// To is the cheaper "provider/model" (route).
	To string `yaml:"to,omitempty"`
	// Percent fewer input tokens per call (shorten_prompts), 0..100.
	Percent pricing.Amount `yaml:"percent,omitempty"`
	// HitRate is the target cached share of input (cache_hit_rate), 0..1.
	HitRate pricing.Amount `yaml:"hit_rate,omitempty"`
	// MonthlyCap in ReportingCurrency (budget_cap).
	MonthlyCap pricing.Amount `yaml:"monthly_cap,omitempty"`
	// UX is the cost in user experience, in the owner's words (required),
	// e.g. "quality risk: medium on complex tickets".
	UX string `yaml:"ux"`
}

// Envelope is the annual amount the CFO approved, in ReportingCurrency,
// phased by month.
type Envelope struct {
	// Annual amount (required, > 0).
	Annual pricing.Amount `yaml:"annual"`
	// Phasing is even (default: Annual/12 per month, cents rounded down, the
	// remainder in December), quarterly (Quarters, each quarter even over its
	// months the same way) or monthly (Months, every month listed).
	Phasing string `yaml:"phasing,omitempty"`
	// Quarters: "Q1".."Q4" -> amount; they must add up to Annual.
	Quarters map[string]pricing.Amount `yaml:"quarters,omitempty"`
	// Months: "2026-01".."2026-12" -> amount; they must add up to Annual.
	Months map[string]pricing.Amount `yaml:"months,omitempty"`
	// Teams optionally splits Annual by team (phased like the whole); the
	// shares must add up to Annual. Workflows name their team.
	Teams map[string]pricing.Amount `yaml:"teams,omitempty"`
}

// Read parses a plan file strictly (unknown fields are errors) and validates it.
func Read(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Parse decodes and validates plan YAML.
func Parse(b []byte) (*Plan, error) {
	var p Plan
	if err := confload.Strict(b, &p); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	p.applyDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p.raw = append([]byte(nil), b...)
	return &p, nil
}

func (p *Plan) applyDefaults() {
	if p.Scenario == "" {
		p.Scenario = "base"
	}
	if p.TimeZone == "" {
		p.TimeZone = "UTC"
	}
	for i := range p.Workflows {
		if p.Workflows[i].ServiceTier == "" {
			p.Workflows[i].ServiceTier = event.ServiceTierStandard
		}
	}
	if p.Envelope != nil && p.Envelope.Phasing == "" {
		p.Envelope.Phasing = PhasingEven
	}
}

// Envelope phasings.
const (
	PhasingEven      = "even"
	PhasingQuarterly = "quarterly"
	PhasingMonthly   = "monthly"
)

var (
	currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)
	modelRe    = regexp.MustCompile(`^[^/\s]+/[^\s]+$`)
	one        = decimal.NewFromInt(1)
	hundred    = decimal.NewFromInt(100)
)

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Validate reports every problem at once, each with its path.
func (p *Plan) Validate() error {
	var errs []error
	bad := func(path, f string, a ...any) { errs = append(errs, fmt.Errorf(path+": "+f, a...)) }
	if strings.TrimSpace(p.Tenant) == "" {
		bad("tenant", "required")
	}
	if p.Year < 2000 || p.Year > 2200 {
		bad("year", "%d is not a plan year (2000..2200)", p.Year)
	}
	if !currencyRe.MatchString(p.ReportingCurrency) {
		bad("reporting_currency", "%q is not an ISO 4217 code", p.ReportingCurrency)
	}
	if _, err := time.LoadLocation(p.TimeZone); err != nil {
		bad("time_zone", "%v", err)
	}
	for _, c := range sortedKeys(p.PlanningFX) {
		a := p.PlanningFX[c]
		if !currencyRe.MatchString(c) {
			bad("planning_fx."+c, "not an ISO 4217 code")
		}
		if !a.Set || !a.D.IsPositive() {
			bad("planning_fx."+c, "rate must be > 0")
		}
	}
	if len(p.Workflows) == 0 {
		bad("workflows", "at least one workflow is required")
	}
	names := map[string]bool{}
	for i := range p.Workflows {
		w := &p.Workflows[i]
		wp := fmt.Sprintf("workflows[%d]", i)
		if strings.TrimSpace(w.Name) == "" {
			bad(wp+".name", "required")
		} else if names[w.Name] {
			bad(wp+".name", "%q is planned twice", w.Name)
		}
		names[w.Name] = true
		nonNeg(&errs, wp+".eligible_users", w.EligibleUsers, true)
		nonNeg(&errs, wp+".sessions_per_user_month", w.SessionsPerUser, true)
		nonNeg(&errs, wp+".calls_per_session", w.CallsPerSession, true)
		nonNeg(&errs, wp+".outcomes_per_session", w.OutcomesPerSession, false)
		nonNeg(&errs, wp+".value_per_outcome", w.ValuePerOutcome, false)
		if len(w.Adoption) == 0 {
			bad(wp+".adoption", "at least one month is required")
		}
		for _, k := range sortedKeys(w.Adoption) {
			mp := wp + ".adoption." + k
			if _, err := p.planMonth(k); err != nil {
				bad(mp, "%v", err)
			}
			share(&errs, mp, w.Adoption[k])
		}
		t := w.Tokens
		tp := wp + ".tokens_per_call"
		nonNeg(&errs, tp+".input", t.Input, true)
		nonNeg(&errs, tp+".output", t.Output, true)
		nonNeg(&errs, tp+".cache_write", t.CacheWrite, false)
		nonNeg(&errs, tp+".reasoning", t.Reasoning, false)
		if t.CachedShare.Set {
			share(&errs, tp+".cached_share", t.CachedShare)
		}
		if t.Input.Set && t.CacheWrite.Set && t.Input.D.Mul(one.Sub(t.CachedShare.D)).LessThan(t.CacheWrite.D) {
			bad(tp+".cache_write", "%s exceeds the uncached input (input × (1 − cached_share) = %s)", t.CacheWrite, t.Input.D.Mul(one.Sub(t.CachedShare.D)))
		}
		if t.Reasoning.Set && t.Output.Set && t.Reasoning.D.GreaterThan(t.Output.D) {
			bad(tp+".reasoning", "%s exceeds output %s", t.Reasoning, t.Output)
		}
		switch w.ServiceTier {
		case event.ServiceTierStandard, event.ServiceTierBatch, event.ServiceTierFlex, event.ServiceTierPriority:
		default:
			bad(wp+".service_tier", "%q is not one of standard, batch, flex, priority", w.ServiceTier)
		}
		if len(w.ModelMix) == 0 {
			bad(wp+".model_mix", "at least one month is required")
		}
		for _, k := range sortedKeys(w.ModelMix) {
			mp := wp + ".model_mix." + k
			if _, err := p.planMonth(k); err != nil {
				bad(mp, "%v", err)
			}
			sum := decimal.Zero
			for _, m := range sortedKeys(w.ModelMix[k]) {
				if !modelRe.MatchString(m) {
					bad(mp+"."+m, "must be provider/model")
				}
				a := w.ModelMix[k][m]
				share(&errs, mp+"."+m, a)
				sum = sum.Add(a.D)
			}
			if len(w.ModelMix[k]) > 0 && !sum.Equal(one) {
				bad(mp, "shares add up to %s, not 1", sum)
			}
		}
		for j, l := range w.Levers {
			lp := fmt.Sprintf("%s.levers[%d]", wp, j)
			if strings.TrimSpace(l.UX) == "" {
				bad(lp+".ux", "required: say what the option costs users")
			}
			switch l.Kind {
			case LeverDefer:
				if l.Months < 1 || l.Months > 12 {
					bad(lp+".months", "%d must be 1..12", l.Months)
				}
			case LeverCut:
			case LeverRoute:
				if !modelRe.MatchString(l.To) {
					bad(lp+".to", "%q must be provider/model", l.To)
				}
				if !l.Share.Set {
					bad(lp+".share", "required")
				} else {
					share(&errs, lp+".share", l.Share)
				}
			case LeverShorten:
				if !l.Percent.Set || l.Percent.D.IsNegative() || l.Percent.D.GreaterThan(hundred) {
					bad(lp+".percent", "must be 0..100")
				}
			case LeverCache:
				if !l.HitRate.Set {
					bad(lp+".hit_rate", "required")
				} else {
					share(&errs, lp+".hit_rate", l.HitRate)
				}
			case LeverBudgetCap:
				nonNeg(&errs, lp+".monthly_cap", l.MonthlyCap, true)
			default:
				bad(lp+".kind", "%q is not one of %s", l.Kind, strings.Join(leverKinds, ", "))
			}
		}
	}
	if e := p.Envelope; e != nil {
		errs = append(errs, p.validateEnvelope(e)...)
	}
	return errors.Join(errs...)
}

func (p *Plan) validateEnvelope(e *Envelope) []error {
	var errs []error
	bad := func(path, f string, a ...any) { errs = append(errs, fmt.Errorf("envelope."+path+": "+f, a...)) }
	if !e.Annual.Set || !e.Annual.D.IsPositive() {
		bad("annual", "required, > 0")
	}
	sumOf := func(m map[string]pricing.Amount) decimal.Decimal {
		s := decimal.Zero
		for _, a := range m {
			s = s.Add(a.D)
		}
		return s
	}
	switch e.Phasing {
	case PhasingEven:
	case PhasingQuarterly:
		for _, q := range []string{"Q1", "Q2", "Q3", "Q4"} {
			if _, ok := e.Quarters[q]; !ok {
				bad("quarters."+q, "required with phasing: quarterly")
			}
		}
		for _, k := range sortedKeys(e.Quarters) {
			if k != "Q1" && k != "Q2" && k != "Q3" && k != "Q4" {
				bad("quarters."+k, "not a quarter (Q1..Q4)")
			}
			nonNeg(&errs, "envelope.quarters."+k, e.Quarters[k], true)
		}
		if s := sumOf(e.Quarters); e.Annual.Set && !s.Equal(e.Annual.D) {
			bad("quarters", "add up to %s, not annual %s", s, e.Annual)
		}
	case PhasingMonthly:
		for _, k := range sortedKeys(e.Months) {
			if _, err := p.planMonth(k); err != nil {
				bad("months."+k, "%v", err)
			}
			nonNeg(&errs, "envelope.months."+k, e.Months[k], true)
		}
		if len(e.Months) != 12 {
			bad("months", "all 12 months are required with phasing: monthly (%d given)", len(e.Months))
		}
		if s := sumOf(e.Months); e.Annual.Set && !s.Equal(e.Annual.D) {
			bad("months", "add up to %s, not annual %s", s, e.Annual)
		}
	default:
		bad("phasing", "%q is not one of even, quarterly, monthly", e.Phasing)
	}
	if len(e.Teams) > 0 {
		for _, k := range sortedKeys(e.Teams) {
			nonNeg(&errs, "envelope.teams."+k, e.Teams[k], true)
		}
		if s := sumOf(e.Teams); e.Annual.Set && !s.Equal(e.Annual.D) {
			bad("teams", "add up to %s, not annual %s", s, e.Annual)
		}
	}
	return errs
}

func nonNeg(errs *[]error, path string, a pricing.Amount, required bool) {
	if !a.Set {
		if required {
			*errs = append(*errs, fmt.Errorf("%s: required", path))
		}
		return
	}
	if a.D.IsNegative() {
		*errs = append(*errs, fmt.Errorf("%s: %s must be >= 0", path, a))
	}
}

func share(errs *[]error, path string, a pricing.Amount) {
	if !a.Set || a.D.IsNegative() || a.D.GreaterThan(one) {
		*errs = append(*errs, fmt.Errorf("%s: %s must be a share between 0 and 1", path, a))
	}
}
