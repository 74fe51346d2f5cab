package reconcile

import (
	"sort"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/forecast"
)

// MonthRow is one month of the reconciliation.
type MonthRow struct {
	Month    forecast.Month
	Actual   bool            // BottomUp is the month's actual spend (a closed month)
	BottomUp decimal.Decimal // actual for closed months, else the model
	Envelope decimal.Decimal
	Gap      decimal.Decimal // BottomUp - Envelope (> 0: over)
}

// TeamRow is one team's year.
type TeamRow struct {
	Team     string
	BottomUp decimal.Decimal // the model's year for the team's workflows
	Envelope decimal.Decimal
	Gap      decimal.Decimal
}

// Option is one lever pulled on one workflow.
type Option struct {
	Rank        int
	Workflow    string
	Lever       forecast.Lever
	What        string          // "route 70% of support calls to openai/gpt-5.4-nano"
	Saving      decimal.Decimal // over months >= From, this option alone
	UX          string          // the plan's words
	ClosesAlone bool            // Saving >= the year's gap
	// GapAfter is the year's gap with options 1..Rank pulled together (the
	// model re-run with all of them: savings of levers on one workflow overlap).
	GapAfter decimal.Decimal
}

// Report is a reconciliation.
type Report struct {
	Year     int
	Currency string
	From     forecast.Month
	Months   []MonthRow
	Teams    []TeamRow
	BottomUp decimal.Decimal
	Envelope decimal.Decimal
	Gap      decimal.Decimal
	Options  []Option // ranked by saving; empty when not over
	// Closes says whether pulling every listed option closes the gap.
	Closes bool
}

// Over is true when the bottom-up year exceeds the envelope.
func (r *Report) Over() bool { return r.Gap.IsPositive() }

// Run reconciles the plan's forecast with its envelope.
func Run(p *forecast.Plan, eng forecast.Pricer, cfg Config) (*Report, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, err := forecast.Build(p, eng, forecast.Options{})
	if err != nil {
		return nil, err
	}
	env := Phase(p)
	rep := &Report{Year: p.Year, Currency: p.ReportingCurrency, From: cfg.From}
	closed := decimal.Zero // actual-or-model spend of months < From
	for m := forecast.Month(1); m <= 12; m++ {
		row := MonthRow{Month: m, BottomUp: base.MonthTotal(m), Envelope: env[m]}
		if a, ok := cfg.Actuals[m]; ok && m < cfg.From {
			row.BottomUp, row.Actual = a, true
		}
		if m < cfg.From {
			closed = closed.Add(row.BottomUp)
		}
		row.Gap = row.BottomUp.Sub(row.Envelope)
		rep.Months = append(rep.Months, row)
		rep.BottomUp = rep.BottomUp.Add(row.BottomUp)
		rep.Envelope = rep.Envelope.Add(row.Envelope)
	}
	rep.Gap = rep.BottomUp.Sub(rep.Envelope)
	if p.Envelope != nil && len(p.Envelope.Teams) > 0 {
		for _, team := range sortedTeams(p) {
			tr := TeamRow{Team: team, Envelope: p.Envelope.Teams[team].D}
			for _, l := range base.Lines {
				if l.Team == team {
					tr.BottomUp = tr.BottomUp.Add(l.Cost)
				}
			}
			tr.Gap = tr.BottomUp.Sub(tr.Envelope)
			rep.Teams = append(rep.Teams, tr)
		}
	}
	if !rep.Over() {
		rep.Closes = true
		return rep, nil
	}
	baseOpen := base.TotalFrom(cfg.From)
	type cand struct {
		Option
		order int
	}
	var cands []cand
	for _, w := range p.Workflows {
		for _, l := range w.Levers {
			q, caps, err := forecast.ApplyLever(p, nil, w.Name, l)
			if err != nil {
				return nil, err
			}
			r, err := forecast.Build(q, eng, forecast.Options{MonthlyCap: caps})
			if err != nil {
				return nil, err
			}
			s := baseOpen.Sub(r.TotalFrom(cfg.From))
			if !s.IsPositive() {
				continue
			}
			cands = append(cands, cand{Option: Option{Workflow: w.Name, Lever: l, What: l.Describe(w.Name), Saving: s, UX: l.UX,
				ClosesAlone: !s.LessThan(rep.Gap)}, order: len(cands)})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].Saving.GreaterThan(cands[j].Saving) })
	if len(cands) > cfg.MaxOptions {
		cands = cands[:cfg.MaxOptions]
	}
	cum, caps := p, map[string]decimal.Decimal(nil)
	for i, c := range cands {
		var err error
		if cum, caps, err = forecast.ApplyLever(cum, caps, c.Workflow, c.Lever); err != nil {
			return nil, err
		}
		r, err := forecast.Build(cum, eng, forecast.Options{MonthlyCap: caps})
		if err != nil {
			return nil, err
		}
		c.Rank = i + 1
		c.GapAfter = closed.Add(r.TotalFrom(cfg.From)).Sub(rep.Envelope)
		rep.Options = append(rep.Options, c.Option)
	}
	if n := len(rep.Options); n > 0 {
		rep.Closes = !rep.Options[n-1].GapAfter.IsPositive()
	}
	return rep, nil
}

func sortedTeams(p *forecast.Plan) []string {
	var ts []string
	for t := range p.Envelope.Teams {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}
