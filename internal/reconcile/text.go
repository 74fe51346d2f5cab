package reconcile

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/shopspring/decimal"
)

func money(d decimal.Decimal) string { return d.StringFixed(2) }

// WriteReport prints the reconciliation: months, teams, the year and the
// ranked options.
func WriteReport(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "month\tbottom-up\tbasis\tenvelope\tgap\t\n")
	for _, m := range r.Months {
		basis := "model"
		if m.Actual {
			basis = "actual"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", m.Month.Label(r.Year), money(m.BottomUp), basis, money(m.Envelope), money(m.Gap))
	}
	fmt.Fprintf(tw, "year\t%s\t\t%s\t%s\t\n", money(r.BottomUp), money(r.Envelope), money(r.Gap))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Teams) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "\nteam\tbottom-up\tenvelope\tgap\t\n")
		for _, t := range r.Teams {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", t.Team, money(t.BottomUp), money(t.Envelope), money(t.Gap))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if !r.Over() {
		_, err := fmt.Fprintf(w, "\nwithin the envelope by %s %s: no options needed\n", r.Currency, money(r.Gap.Neg()))
		return err
	}
	fmt.Fprintf(w, "\nover the envelope by %s %s; options (savings from %s on, re-priced by the model):\n", r.Currency, money(r.Gap), r.From.Label(r.Year))
	if len(r.Options) == 0 {
		_, err := fmt.Fprintln(w, "  none: the plan's workflows offer no levers")
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "#\toption\tsaving\tcost to users\tcloses alone\tgap after 1..#\n")
	for _, o := range r.Options {
		c := "no"
		if o.ClosesAlone {
			c = "yes"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", o.Rank, o.What, money(o.Saving), o.UX, c, money(o.GapAfter))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "the listed options do not close the gap"
	if r.Closes {
		verdict = "pulling the listed options closes the gap"
	}
	_, err := fmt.Fprintln(w, verdict)
	return err
}

// WriteBridge prints the variance bridge of closed months.
func WriteBridge(w io.Writer, rows []BridgeRow, year int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "month\tforecast\tactual\tvariance\tvolume\tmix\tefficiency\tprice\tfx\t\n")
	var tot BridgeRow
	line := func(label string, b BridgeRow) {
		v, vol, mix, eff, pr, fx := b.Shown(2)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", label, money(b.Forecast), money(b.Actual), v, vol, mix, eff, pr, fx)
	}
	for _, b := range rows {
		line(b.Month.Label(year), b)
		tot.Forecast, tot.Actual, tot.Variance = tot.Forecast.Add(b.Forecast), tot.Actual.Add(b.Actual), tot.Variance.Add(b.Variance)
		tot.Volume, tot.Mix, tot.Efficiency, tot.Price, tot.FX = tot.Volume.Add(b.Volume), tot.Mix.Add(b.Mix), tot.Efficiency.Add(b.Efficiency), tot.Price.Add(b.Price), tot.FX.Add(b.FX)
	}
	line("total", tot)
	return tw.Flush()
}
