package bill

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/tokenmeter/tokenmeter/internal/procurement"
)

// WriteTable prints results for people: amounts at cents, explanations by cause.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "day\tprovider\tproject\tmodel\tcur\tmetered\tbilled\tdifference\texplained\tresidual\t")
	for _, r := range rs {
		var ex []string
		for _, e := range r.Explained {
			ex = append(ex, e.Cause+" "+e.Amount.String())
		}
		if r.Problem != "" {
			ex = append(ex, "PROBLEM: "+r.Problem)
		}
		model := r.Model
		if model == "" {
			model = "(unmapped)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Day, r.Provider, r.Project, model, r.Currency,
			procurement.Cents(r.Metered), procurement.Cents(r.Billed), r.Difference.String(), strings.Join(ex, "; "), r.Residual.String())
	}
	return tw.Flush()
}
