package levers

import (
	"context"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/exact"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// Money in reports is rounded to cents here and nowhere else.
func cents(d decimal.Decimal) string { return d.StringFixed(2) }

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 2, 4, 2, ' ', 0) }

// WriteWhatIfs prints what-ifs with their saving per call and per outcome.
func WriteWhatIfs(w io.Writer, ws []WhatIf, outcomes decimal.Decimal) error {
	tw := table(w)
	fmt.Fprintln(tw, "candidate\tcache\tcalls\tactual\ton candidate\tsaving\tsaving/outcome\tunpriced calls")
	for _, x := range ws {
		per := "n/a (no outcomes)"
		if outcomes.IsPositive() {
			per = x.Saving().Div(outcomes).StringFixed(4)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s %s\t%s\t%s\t%s\t%d\n", x.Candidate, x.Cache, x.Calls, cents(x.Actual), x.Currency,
			cents(x.Repriced), cents(x.Saving()), per, x.Unpriced)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, x := range ws {
		for _, r := range x.Reasons {
			fmt.Fprintf(w, "  %s: not priced: %s\n", x.Candidate, r)
		}
	}
	fmt.Fprintln(w, "Cache assumption: 'same' keeps each call's cache reads and writes on the candidate (billed at its input rate where it has no cache price); 'none' bills all input uncached.")
	return nil
}

// WriteDecomposition prints the before/after figures and the lever
// decomposition of cost per outcome at 4 places, adding up.
func WriteDecomposition(w io.Writer, d Decomposition, both [2]PeriodUsage, currency string) error {
	fb, fa := FiguresOf(both[0]), FiguresOf(both[1])
	ft := table(w)
	show := func(r *big.Rat, scale int32) string {
		if r == nil {
			return "n/a"
		}
		return exact.Round(r, scale).String()
	}
	fmt.Fprintln(ft, "\tbefore\tafter")
	fmt.Fprintf(ft, "calls\t%d\t%d\n", fb.Calls, fa.Calls)
	fmt.Fprintf(ft, "outcomes\t%s\t%s\n", fb.Outcomes, fa.Outcomes)
	fmt.Fprintf(ft, "spend (%s)\t%s\t%s\n", currency, cents(fb.Spend), cents(fa.Spend))
	fmt.Fprintf(ft, "cost per call\t%s\t%s\n", show(fb.CostPerCall, 6), show(fa.CostPerCall, 6))
	fmt.Fprintf(ft, "cost per outcome\t%s\t%s\n", show(fb.CostPerOutcome, 4), show(fa.CostPerOutcome, 4))
	fmt.Fprintf(ft, "tokens per call\t%s\t%s\n", show(fb.TokensPerCall, 1), show(fa.TokensPerCall, 1))
	fmt.Fprintf(ft, "outcomes per call\t%s\t%s\n", show(fb.OutcomesPerCall, 4), show(fa.OutcomesPerCall, 4))
	if err := ft.Flush(); err != nil {
		return err
	}
	b, a, eff := d.Rounded(4)
	fmt.Fprintf(w, "cost per outcome: %s -> %s %s (change %s)\n", b, a, currency, a.Sub(b))
	tw := table(w)
	fmt.Fprintln(tw, "lever\teffect on cost per outcome")
	for i, l := range Levers {
		fmt.Fprintf(tw, "%s\t%s\n", l, eff[i])
	}
	fmt.Fprintf(tw, "total\t%s\n", a.Sub(b))
	return tw.Flush()
}

// WriteAnomalies prints anomalies, one line each.
func WriteAnomalies(w io.Writer, as []DriverAnomaly) error {
	if len(as) == 0 {
		_, err := fmt.Fprintln(w, "no anomalies")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "workflow\tdriver\tfrom\tto\tbaseline\tpeak\tchange\tcost impact\tlikely cause")
	for _, a := range as {
		ch := "n/a"
		if r := a.Relative(); r != nil {
			ch = exact.Round(exact.Mul(r, exact.Int(100)), 1).String() + "%"
		}
		impact := "not estimated for this driver"
		if a.ImpactKnown {
			impact = cents(a.Impact) + " " + a.Currency
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Workflow, a.Driver, a.Start.Format(time.DateOnly), a.End.Format(time.DateOnly),
			exact.Round(a.Baseline, 4), exact.Round(a.Peak, 4), ch, impact, a.Cause)
	}
	return tw.Flush()
}

// Saving is one lever's best opportunity.
type Saving struct {
	Lever, Workflow, What string
	Amount                decimal.Decimal
	Currency              string
}

// TopSavings ranks the best opportunity found for each lever and workflow in
// the filter's period: routing (the cheapest candidate's what-if saving),
// prompts (the extra cost of flagged prompt versions), caching (absent
// caching at the view's stated hit rate plus cache writes never read back),
// and long context (staying below the threshold).
func (s Source) TopSavings(ctx context.Context, e *pricing.Engine, f Filter, cands []Candidate) ([]Saving, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var out []Saving
	rows, err := s.Conn.Query(ctx, "SELECT DISTINCT workflow FROM "+s.DB+".priced_usage WHERE tenant = ? AND event_time >= ? AND event_time < ? ORDER BY workflow",
		f.Tenant, f.From.UTC(), f.To.UTC())
	if err != nil {
		return nil, fmt.Errorf("levers: workflows: %w", err)
	}
	var wfs []string
	for rows.Next() {
		var wf string
		if err := rows.Scan(&wf); err != nil {
			rows.Close()
			return nil, err
		}
		wfs = append(wfs, wf)
	}
	rows.Close()
	for _, wf := range wfs {
		wfF := f
		wfF.Column, wfF.Value = "workflow", wf
		if len(cands) > 0 {
			ws, err := s.WhatIfs(ctx, e, wfF, cands, CacheSame)
			if err != nil {
				return nil, err
			}
			if len(ws) > 0 && ws[0].Saving().IsPositive() {
				out = append(out, Saving{Lever: LeverRouting, Workflow: wf, Amount: ws[0].Saving(), Currency: ws[0].Currency,
					What: fmt.Sprintf("route %d calls to %s (cache as today)", ws[0].Calls, ws[0].Candidate)})
			}
		}
		lc, err := s.LongContext(ctx, e, wfF)
		if err != nil {
			return nil, err
		}
		for _, l := range lc {
			if sv := l.Actual.Sub(l.Below); sv.IsPositive() {
				out = append(out, Saving{Lever: LeverPrompt, Workflow: wf, Amount: sv, Currency: l.Currency,
					What: fmt.Sprintf("keep %d %s/%s calls below the long-context threshold", l.Calls, l.Provider, l.Model)})
			}
		}
	}
	// Prompt versions that raised cost per outcome: what reverting saves.
	pv, err := s.Conn.Query(ctx, `SELECT workflow, prompt_template, prompt_version, previous_version, billing_currency, extra_cost
FROM `+s.DB+`.v_prompt_versions WHERE tenant = ? AND flagged AND extra_cost > 0 AND last_seen >= toDate(?) AND first_seen < toDate(?)`,
		f.Tenant, f.From.UTC(), f.To.UTC())
	if err != nil {
		return nil, fmt.Errorf("levers: prompt versions: %w", err)
	}
	for pv.Next() {
		var wf, tmpl, ver, prev, cur string
		var extra *decimal.Decimal
		if err := pv.Scan(&wf, &tmpl, &ver, &prev, &cur, &extra); err != nil {
			pv.Close()
			return nil, err
		}
		if extra != nil {
			out = append(out, Saving{Lever: LeverPrompt, Workflow: wf, Amount: *extra, Currency: cur,
				What: fmt.Sprintf("prompt %s %s raised cost per outcome over %s", tmpl, ver, prev)})
		}
	}
	pv.Close()
	cr, err := s.Conn.Query(ctx, `SELECT workflow, billing_currency, sum(saving), any(assumed_hit_rate) FROM `+s.DB+`.v_cache_absent
WHERE tenant = ? AND month >= toStartOfMonth(toDate(?)) AND month < toDate(?) GROUP BY workflow, billing_currency`, f.Tenant, f.From.UTC(), f.To.UTC())
	if err != nil {
		return nil, fmt.Errorf("levers: cache absent: %w", err)
	}
	for cr.Next() {
		var wf, cur string
		var sv, hit decimal.Decimal
		if err := cr.Scan(&wf, &cur, &sv, &hit); err != nil {
			cr.Close()
			return nil, err
		}
		out = append(out, Saving{Lever: LeverCaching, Workflow: wf, Amount: sv, Currency: cur,
			What: fmt.Sprintf("enable prompt caching (at a %s%% hit rate)", hit.Mul(decimal.NewFromInt(100)).String())})
	}
	cr.Close()
	uw, err := s.Conn.Query(ctx, `SELECT workflow, billing_currency, sum(unread_write_spend) AS u FROM `+s.DB+`.v_cache_efficiency
WHERE tenant = ? AND month >= toStartOfMonth(toDate(?)) AND month < toDate(?) GROUP BY workflow, billing_currency HAVING u > 0`, f.Tenant, f.From.UTC(), f.To.UTC())
	if err != nil {
		return nil, fmt.Errorf("levers: cache writes: %w", err)
	}
	for uw.Next() {
		var wf, cur string
		var sv decimal.Decimal
		if err := uw.Scan(&wf, &cur, &sv); err != nil {
			uw.Close()
			return nil, err
		}
		out = append(out, Saving{Lever: LeverCaching, Workflow: wf, Amount: sv, Currency: cur, What: "cache writes never read back within their lifetime"})
	}
	uw.Close()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Amount.GreaterThan(out[j].Amount) })
	return out, nil
}

// WriteSavings prints the top n savings.
func WriteSavings(w io.Writer, ss []Saving, n int) error {
	if len(ss) == 0 {
		_, err := fmt.Fprintln(w, "no savings found")
		return err
	}
	if n > 0 && len(ss) > n {
		ss = ss[:n]
	}
	tw := table(w)
	fmt.Fprintln(tw, "#\tlever\tworkflow\tsaving\twhat")
	for i, s := range ss {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s %s\t%s\n", i+1, s.Lever, s.Workflow, cents(s.Amount), s.Currency, s.What)
	}
	return tw.Flush()
}

// ParseCandidates reads "provider/model,provider/model".
func ParseCandidates(s string) ([]Candidate, error) {
	var out []Candidate
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		i := strings.Index(p, "/")
		if i <= 0 || i == len(p)-1 {
			return nil, fmt.Errorf("candidate %q: want provider/model", p)
		}
		out = append(out, Candidate{p[:i], p[i+1:]})
	}
	return out, nil
}
