package forecast

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/shopspring/decimal"
)

// money shows an exact amount at cents for a table (the figure itself is exact).
func money(d decimal.Decimal) string { return d.StringFixed(2) }

// WriteTable prints the forecast per workflow and month, with a total row
// per month, in the plan's reporting currency.
func WriteTable(w io.Writer, r *Result) error {
	p := r.Plan
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workflow\t")
	for m := Month(1); m <= 12; m++ {
		fmt.Fprintf(tw, "%s\t", m.Label(p.Year))
	}
	fmt.Fprintf(tw, "year (%s)\t\n", p.ReportingCurrency)
	for _, wf := range p.Workflows {
		fmt.Fprintf(tw, "%s\t", wf.Name)
		for m := Month(1); m <= 12; m++ {
			fmt.Fprintf(tw, "%s\t", money(r.WorkflowMonth(wf.Name, m)))
		}
		y := decimal.Zero
		for _, l := range r.Lines {
			if l.Workflow == wf.Name {
				y = y.Add(l.Cost)
			}
		}
		fmt.Fprintf(tw, "%s\t\n", money(y))
	}
	fmt.Fprintf(tw, "total\t")
	for m := Month(1); m <= 12; m++ {
		fmt.Fprintf(tw, "%s\t", money(r.MonthTotal(m)))
	}
	fmt.Fprintf(tw, "%s\t\n", money(r.Total()))
	if err := tw.Flush(); err != nil {
		return err
	}
	// Volumes for the year.
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\nworkflow\tcalls\tinput tokens\tcached\toutput tokens\treasoning\toutcomes\tcost per outcome\t\n")
	for _, wf := range p.Workflows {
		var calls, outc, cost decimal.Decimal
		var tok ClassTokens
		for _, row := range r.ByWorkflowMonth() {
			if row.Workflow == wf.Name {
				calls, outc, cost, tok = calls.Add(row.Calls), outc.Add(row.Outcomes), cost.Add(row.Cost), tok.Add(row.Tokens)
			}
		}
		cpo := "-"
		if outc.IsPositive() {
			cpo = cost.DivRound(outc, 4).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", wf.Name, calls.Round(0), tok.Input.Round(0), tok.CacheRead.Round(0), tok.Output.Round(0), tok.Reasoning.Round(0), outc.Round(0), cpo)
	}
	return tw.Flush()
}

// WriteSensitivity prints the grid, the driver that moves the total most first.
func WriteSensitivity(w io.Writer, s *Sensitivity, currency string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "driver\t")
	if len(s.Rows) > 0 {
		for _, c := range s.Rows[0].Cells {
			fmt.Fprintf(tw, "%+d%%\t", c.Percent)
		}
	}
	fmt.Fprintf(tw, "swing (%s)\t\n", currency)
	for _, r := range s.Rows {
		fmt.Fprintf(tw, "%s\t", r.Knob)
		for _, c := range r.Cells {
			fmt.Fprintf(tw, "%s\t", money(c.Total))
		}
		fmt.Fprintf(tw, "%s\t\n", money(r.Swing))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.Rows) > 0 {
		top := s.Rows[0]
		for _, c := range top.Cells {
			if c.Percent == top.Cells[len(top.Cells)-1].Percent && !s.Base.IsZero() {
				fmt.Fprintf(w, "\nbase %s %s; %s moves the total most: %+d%% %s gives %s (%s%%)\n", currency, money(s.Base), top.Knob, c.Percent, top.Knob,
					money(c.Total), c.Change.Mul(decimal.NewFromInt(100)).DivRound(s.Base, 1).String())
			}
		}
	}
	return nil
}

// WriteComparison prints planned beside observed drivers.
func WriteComparison(w io.Writer, cs []Comparison) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "workflow\tdriver\tplanned\tobserved\n")
	for _, c := range cs {
		obs := c.Observed
		if obs == "" {
			obs = "(not observed)"
		}
		pl := c.Planned
		if pl == "" {
			pl = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Workflow, c.Driver, pl, obs)
	}
	return tw.Flush()
}

// WriteVersions prints approved versions.
func WriteVersions(w io.Writer, vs []Version) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "version\tscenario\tapproved by\tapproved at (UTC)\ttotal\tnote\n")
	for i, v := range vs {
		cur := ""
		if i == 0 {
			cur = " (in force)"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s %s\t%s\n", v.ID, cur, v.Scenario, v.ApprovedBy, v.ApprovedAt.UTC().Format("2006-01-02 15:04:05"), v.Currency, money(v.Total), strings.TrimSpace(v.Note))
	}
	return tw.Flush()
}
