package commit

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/procurement"
)

// SpendColumns is the daily spend CSV header `commitments status` reads
// (the v_commitment_spend_daily view has the same columns); each row is
// drawn at the start of its UTC day.
var SpendColumns = []string{"day", "tenant", "provider", "model", "tier", "pricing_currency", "cost"}

// ReadSpendCSV draws every row of a daily spend CSV into l.
func ReadSpendCSV(r io.Reader, name string, l *Ledger) error {
	return procurement.ReadCSV(r, name, SpendColumns, func(rec procurement.Record) {
		day, err := time.Parse(time.DateOnly, rec.Str("day"))
		if err != nil {
			rec.Time("day") // reports the bad value
			return
		}
		l.ApplyCost(rec.Str("tenant"), rec.Str("provider"), rec.Str("model"), rec.Str("tier"), day, rec.Str("pricing_currency"), rec.Dec("cost"))
	})
}

// WriteStatus prints statuses for people.
func WriteStatus(w io.Writer, ss []Status) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tkind\tprovider\tperiod\tamount\tdrawn\tremaining\tburn/day\tprojected\tprojected unused\t")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s..%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.ID, s.Kind, s.Provider, s.PeriodStart.Format(time.DateOnly),
			s.PeriodEnd.Format(time.DateOnly), procurement.Cents(s.Amount), procurement.Cents(s.Drawn), procurement.Cents(s.Remaining),
			procurement.Cents(s.BurnPerDay), procurement.Cents(s.Projected), procurement.Cents(s.ProjectedUnused))
	}
	return tw.Flush()
}
