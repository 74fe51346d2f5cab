package offers

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/procurement"
)

// ActualScenario names the replay over the actual window.
const ActualScenario = "actual"

// Row is one scenario of the side-by-side sheet.
type Row struct {
	Scenario string
	Label    string
	Results  map[string]*Result // by offer id and baseline name
	Winner   string             // cheapest offer (baselines excluded)
	Second   string             // next cheapest offer, "" with one offer
	// CounterBP is the extra discount on the second-best offer's rates, in
	// basis points, that makes it cost no more than the winner; -1 when no
	// rate discount does (its fixed parts alone cost more).
	CounterBP int64
}

// Risk is one offer's spread across the term scenarios (nearest-rank).
type Risk struct {
	Offer                           string
	CostP10, CostP50, CostP90       decimal.Decimal
	UnusedP10, UnusedP50, UnusedP90 decimal.Decimal
	// BreakEvenPercent is the smallest volume, in percent of the actual
	// window's usage (1..MaxBreakEvenPercent), at which the offer costs no
	// more than the current contract over the window; 0 = none up to the max.
	BreakEvenPercent int64
	BreakEvenList    decimal.Decimal // list cost of the window at that volume
}

// Sheet is the whole comparison.
type Sheet struct {
	Tenant, Provider string
	Offers           []string // offer ids in file order
	Rows             []Row    // actual window first, then term scenarios
	Risks            []Risk
}

// MaxBreakEvenPercent bounds the break-even search (3× actual volume).
const MaxBreakEvenPercent = 300

// Compare runs every offer and baseline over the actual window and over
// the term scenarios from src (nil: scaled actuals from the file's
// scenarios), finds winners, counter-offers, risks and break-evens.
func (s *Simulator) Compare(ctx context.Context, actual []procurement.Usage, src procurement.ScenarioSource) (*Sheet, error) {
	f := s.file
	sh := &Sheet{Tenant: f.Tenant, Provider: f.Provider}
	for _, o := range f.Offers {
		sh.Offers = append(sh.Offers, o.ID)
	}
	window := f.Window.List()
	term := f.Term.List()
	if src == nil {
		src = procurement.ScaledActuals{Actual: s.filter(window, actual), Percent: f.Scenarios}
	}
	scen, err := src.Scenarios(ctx, f.Tenant, f.Provider, term)
	if err != nil {
		return nil, err
	}
	type run struct {
		name, label string
		months      []string
		usage       []procurement.Usage
	}
	runs := []run{{ActualScenario, "metered usage " + f.Window.From + ".." + f.Window.To, window, actual}}
	for _, sc := range scen {
		runs = append(runs, run{sc.Name, sc.Label, term, sc.Usage})
	}
	for _, rn := range runs {
		row := Row{Scenario: rn.name, Label: rn.label, Results: map[string]*Result{}, CounterBP: -1}
		for _, b := range []string{BaselineList, BaselineCurrent} {
			r, err := s.Baseline(b, rn.months, rn.usage)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", rn.name, b, err)
			}
			row.Results[b] = r
		}
		for _, id := range sh.Offers {
			r, err := s.Offer(id, rn.months, rn.usage, 0)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", rn.name, id, err)
			}
			r.Scenario = rn.name
			row.Results[id] = r
			if row.Winner == "" || r.Cost.LessThan(row.Results[row.Winner].Cost) {
				row.Second, row.Winner = row.Winner, id
			} else if row.Second == "" || r.Cost.LessThan(row.Results[row.Second].Cost) {
				row.Second = id
			}
		}
		if row.Second != "" {
			if row.CounterBP, err = s.counter(row.Second, rn.months, rn.usage, row.Results[row.Winner].Cost); err != nil {
				return nil, err
			}
		}
		sh.Rows = append(sh.Rows, row)
	}
	for _, id := range sh.Offers {
		rk := Risk{Offer: id}
		var costs, unused []decimal.Decimal
		for _, row := range sh.Rows[1:] {
			costs = append(costs, row.Results[id].Cost)
			unused = append(unused, row.Results[id].Unused())
		}
		rk.CostP10, rk.CostP50, rk.CostP90 = procurement.Percentile(costs, 10), procurement.Percentile(costs, 50), procurement.Percentile(costs, 90)
		rk.UnusedP10, rk.UnusedP50, rk.UnusedP90 = procurement.Percentile(unused, 10), procurement.Percentile(unused, 50), procurement.Percentile(unused, 90)
		if rk.BreakEvenPercent, rk.BreakEvenList, err = s.breakEven(id, window, actual); err != nil {
			return nil, err
		}
		sh.Risks = append(sh.Risks, rk)
	}
	return sh, nil
}

// counter finds, by bisection over basis points, the smallest extra
// discount on offer id's rates at which it costs no more than target. Cost
// falls as the discount grows (every part but fixed fees and true-ups scales
// with the rated spend, and true-ups only grow by what the spend falls), so
// the bisection is sound; -1 when even 100 % is not enough.
func (s *Simulator) counter(id string, months []string, usage []procurement.Usage, target decimal.Decimal) (int64, error) {
	ok := func(bp int64) (bool, error) {
		r, err := s.Offer(id, months, usage, bp)
		if err != nil {
			return false, err
		}
		return r.Cost.LessThanOrEqual(target), nil
	}
	if yes, err := ok(10000); err != nil || !yes {
		return -1, err
	}
	lo, hi := int64(0), int64(10000) // ok(hi) holds
	for lo < hi {
		mid := (lo + hi) / 2
		yes, err := ok(mid)
		if err != nil {
			return 0, err
		}
		if yes {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// breakEven scans volumes 1..MaxBreakEvenPercent % of the actual window and
// returns the first at which the offer costs no more than the current
// contract.
func (s *Simulator) breakEven(id string, window []string, actual []procurement.Usage) (int64, decimal.Decimal, error) {
	rows := s.filter(window, actual)
	for pct := int64(1); pct <= MaxBreakEvenPercent; pct++ {
		scaled := make([]procurement.Usage, len(rows))
		for i, u := range rows {
			scaled[i] = u.Scale(pct, 100)
		}
		o, err := s.Offer(id, window, scaled, 0)
		if err != nil {
			return 0, decimal.Zero, err
		}
		c, err := s.Baseline(BaselineCurrent, window, scaled)
		if err != nil {
			return 0, decimal.Zero, err
		}
		if o.Cost.LessThanOrEqual(c.Cost) {
			return pct, o.List, nil
		}
	}
	return 0, decimal.Zero, nil
}

func bpString(bp int64) string {
	if bp < 0 {
		return "not reachable by a rate discount"
	}
	return decimal.New(bp, -2).StringFixed(2) + "%"
}

// WriteTable writes the sheet for people (amounts rounded to cents).
func (sh *Sheet) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "tenant %s, provider %s (amounts in the pricing currency)\n", sh.Tenant, sh.Provider)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	head := "scenario\tlist\tcurrent"
	for _, id := range sh.Offers {
		head += "\t" + id
	}
	fmt.Fprintln(tw, head+"\twinner\tcounter-offer\t")
	for _, row := range sh.Rows {
		line := row.Scenario + "\t" + procurement.Cents(row.Results[BaselineList].Cost) + "\t" + procurement.Cents(row.Results[BaselineCurrent].Cost)
		for _, id := range sh.Offers {
			line += "\t" + procurement.Cents(row.Results[id].Cost)
		}
		counter := "-"
		switch {
		case row.Second != "" && row.CounterBP < 0:
			counter = row.Second + ": no rate discount is enough (its fixed parts cost more)"
		case row.Second != "":
			counter = fmt.Sprintf("%s needs %s more off its rates", row.Second, bpString(row.CounterBP))
		}
		fmt.Fprintln(tw, line+"\t"+row.Winner+"\t"+counter+"\t")
	}
	fmt.Fprintln(tw, "\t")
	fmt.Fprintln(tw, "offer\tcost P10\tP50\tP90\tunused commitment P10\tP50\tP90\tbreak-even vs current\t")
	for _, rk := range sh.Risks {
		be := "none up to " + strconv.Itoa(MaxBreakEvenPercent) + "% of actual"
		if rk.BreakEvenPercent == 1 {
			be = "cheaper at any volume from 1% of actual"
		} else if rk.BreakEvenPercent > 0 {
			be = fmt.Sprintf("%d%% of actual (list %s)", rk.BreakEvenPercent, procurement.Cents(rk.BreakEvenList))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", rk.Offer, procurement.Cents(rk.CostP10), procurement.Cents(rk.CostP50),
			procurement.Cents(rk.CostP90), procurement.Cents(rk.UnusedP10), procurement.Cents(rk.UnusedP50), procurement.Cents(rk.UnusedP90), be)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, row := range sh.Rows {
		fmt.Fprintf(w, "%s: %s\n", row.Scenario, row.Label)
	}
	return nil
}

// CSVHeader is the sheet's CSV columns: one line per scenario and offer
// (baselines included), exact amounts.
var CSVHeader = []string{"scenario", "scenario_label", "offer", "list_cost", "rated", "tier_discount", "overage_premium",
	"shortfall_paid", "provisioned_fees", "credits_bought", "credits_used", "credits_expired", "credits_left", "cost",
	"saving_vs_list", "saving_vs_current", "unused_commitment", "winner", "counter_offer_discount_bp"}

// WriteCSV writes the sheet as CSV with exact decimals.
func (sh *Sheet) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, row := range sh.Rows {
		ids := append([]string{BaselineList, BaselineCurrent}, sh.Offers...)
		for _, id := range ids {
			r := row.Results[id]
			win, counter := "", ""
			if id == row.Winner {
				win = "true"
			}
			if id == row.Second {
				counter = strconv.FormatInt(row.CounterBP, 10)
			}
			rec := []string{row.Scenario, row.Label, id, r.List.String(), r.Rated.String(), r.TierDiscount.String(), r.OveragePremium.String(),
				r.ShortfallPaid.String(), r.ProvisionedFees.String(), r.CreditsBought.String(), r.CreditsUsed.String(), r.CreditsExpired.String(),
				r.CreditsLeft.String(), r.Cost.String(), r.Saving(row.Results[BaselineList]).String(), r.Saving(row.Results[BaselineCurrent]).String(),
				r.Unused().String(), win, counter}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
