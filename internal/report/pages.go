package report

import (
	"fmt"
	"sort"
	"strings"

	"github.com/shopspring/decimal"
)

const (
	noForecast = "no forecast"
	noEnvelope = "no envelope"
	noUsage    = "no usage"
	noOutcomes = "no outcomes"
)

func sumMonths(d *Data, from, to int, f func(*MonthFacts) Value) Value {
	out := Value{}
	for m := from; m <= to; m++ {
		if v := f(&d.Months[m]); v.OK {
			out.D, out.OK = out.D.Add(v.D), true
		}
	}
	return out
}

func moneyText(v Value, cur, missing string) (string, bool) {
	if !v.OK {
		return missing, true
	}
	return cur + " " + Money(v.D), false
}

func metric(label string, v Value, cur, missing, reading string) Metric {
	t, miss := moneyText(v, cur, missing)
	return Metric{Label: label, Value: t, Missing: miss, Reading: reading}
}

// pctOf is a/b × 100 rounded for presentation; missing when b is 0 or missing.
func pctOf(a, b Value) Value {
	if !a.OK || !b.OK || b.D.IsZero() {
		return Value{}
	}
	return V(a.D.Mul(decimal.NewFromInt(100)).DivRound(b.D, 4))
}

func monthLabels(d *Data, from, to int) []string {
	var out []string
	for m := from; m <= to; m++ {
		out = append(out, d.Period.MonthLabel(m))
	}
	return out
}

func spendV(m *MonthFacts) Value {
	if !m.HasUsage {
		return Value{}
	}
	return m.Spend
}

func headlinePage(d *Data) Page {
	p, cur := d.Period, d.Currency
	spend := sumMonths(d, p.FirstMonth, p.LastMonth, spendV)
	fc := sumMonths(d, p.FirstMonth, p.LastMonth, func(m *MonthFacts) Value { return m.Forecast })
	env := sumMonths(d, p.FirstMonth, p.LastMonth, func(m *MonthFacts) Value { return m.Envelope })
	ytd := sumMonths(d, 1, p.LastMonth, spendV)
	ytdM, ytdFc := matched(d, 1, p.LastMonth, func(m *MonthFacts) Value { return m.Forecast })
	annualEnv := sumMonths(d, 1, 12, func(m *MonthFacts) Value { return m.Envelope })
	pg := Page{Title: fmt.Sprintf("Headline: %s", p.Label)}
	// Percentages compare like with like: only months that have usage.
	spendM, fcM := matched(d, p.FirstMonth, p.LastMonth, func(m *MonthFacts) Value { return m.Forecast })
	_, envM := matched(d, p.FirstMonth, p.LastMonth, func(m *MonthFacts) Value { return m.Envelope })
	vsF, vsE := pctOf(spendM, fcM), pctOf(spendM, envM)
	switch {
	case !spend.OK:
		pg.Lead = fmt.Sprintf("No usage was recorded for %s in %s.", d.Tenant, p.Label)
	case vsF.OK && vsE.OK:
		pg.Lead = fmt.Sprintf("%s spend to date was %s %s; its closed months ran at %s of the approved forecast and %s of the envelope.", p.Label, cur, Money(spend.D), Pct(vsF.D), Pct(vsE.D))
	case vsF.OK:
		pg.Lead = fmt.Sprintf("%s spend to date was %s %s; its closed months ran at %s of the approved forecast (no envelope set).", p.Label, cur, Money(spend.D), Pct(vsF.D))
	case vsE.OK:
		pg.Lead = fmt.Sprintf("%s spend to date was %s %s; its closed months ran at %s of the envelope (no approved forecast).", p.Label, cur, Money(spend.D), Pct(vsE.D))
	default:
		pg.Lead = fmt.Sprintf("%s spend was %s %s; no approved forecast to compare it with.", p.Label, cur, Money(spend.D))
	}
	reforecastReading := "actuals to date + the plan's model for the rest of the year"
	if d.Forecast != nil {
		reforecastReading += fmt.Sprintf(" (forecast version %s, %s)", d.Forecast.ID, d.Forecast.Scenario)
	}
	pg.Metrics = []Metric{
		metric("Spend in "+p.Label, spend, cur, noUsage, ""),
		metric("Approved forecast, "+p.Label, fc, cur, noForecast, readingPct("closed months at", vsF, "of it")),
		metric("Envelope, "+p.Label, env, cur, noEnvelope, readingPct("closed months at", vsE, "of it")),
		metric("Spend year to date", ytd, cur, noUsage, readingPct("closed months at", pctOf(ytdM, ytdFc), "of forecast")),
		metric("Projected year", d.Reforecast, cur, noForecast, reforecastReading),
		metric("Annual envelope", annualEnv, cur, noEnvelope, readingPct("projection is", pctOf(d.Reforecast, annualEnv), "of it")),
	}
	labels := monthLabels(d, 1, p.LastMonth)
	var act, fcs, envs []Value
	tbl := &Table{Columns: []string{"Month", "Actual (" + cur + ")", "Forecast", "Envelope", "Actual - forecast"}}
	for m := 1; m <= p.LastMonth; m++ {
		mf := &d.Months[m]
		a := spendV(mf)
		act, fcs, envs = append(act, a), append(fcs, mf.Forecast), append(envs, mf.Envelope)
		varc := Value{}
		if a.OK && mf.Forecast.OK {
			varc = V(a.D.Sub(mf.Forecast.D))
		}
		tbl.Rows = append(tbl.Rows, []Cell{text(monthLabel(d, m)), MoneyV(a, noUsage), MoneyV(mf.Forecast, noForecast), MoneyV(mf.Envelope, noEnvelope), MoneyV(varc, "-")})
	}
	pg.Blocks = []Block{{
		Title: "Spend vs forecast vs envelope, by month",
		Chart: &Chart{Kind: ChartBar, Labels: labels, YLabel: cur, Series: []Series{{"Actual", act}, {"Forecast", fcs}, {"Envelope", envs}}},
		Table: tbl,
	}}
	return pg
}

// matched sums spend and another figure over the closed months that have
// both (an open month's spend to date is not compared with a whole month).
func matched(d *Data, from, to int, f func(*MonthFacts) Value) (spend, other Value) {
	for m := from; m <= to; m++ {
		mf := &d.Months[m]
		s, o := spendV(mf), f(mf)
		if s.OK && o.OK && mf.Closed {
			spend.D, spend.OK = spend.D.Add(s.D), true
			other.D, other.OK = other.D.Add(o.D), true
		}
	}
	return
}

// monthLabel marks a month that has not ended ("2026-12 (to date)").
func monthLabel(d *Data, m int) string {
	if !d.Months[m].Closed && d.Months[m].HasUsage {
		return d.Period.MonthLabel(m) + " (to date)"
	}
	return d.Period.MonthLabel(m)
}

func readingPct(pre string, v Value, post string) string {
	if !v.OK {
		return ""
	}
	return strings.TrimSpace(pre + " " + Pct(v.D) + " " + post)
}

// periodWorkflow sums a workflow over the period.
func periodWorkflow(d *Data, w *WorkflowFacts, from, to int) (spend, outcomes, value Value) {
	for m := from; m <= to; m++ {
		wm := &w.Months[m]
		if wm.Spend.OK {
			spend.D, spend.OK = spend.D.Add(wm.Spend.D), true
		}
		if wm.Outcomes.OK {
			outcomes.D, outcomes.OK = outcomes.D.Add(wm.Outcomes.D), true
		}
		if wm.OutcomeValue.OK {
			value.D, value.OK = value.D.Add(wm.OutcomeValue.D), true
		}
	}
	return
}

func perOutcome(spend, outcomes Value) Value {
	if !spend.OK || !outcomes.OK || !outcomes.D.IsPositive() {
		return Value{}
	}
	return V(spend.D.DivRound(outcomes.D, 4))
}

func metricsPage(d *Data) Page {
	p, cur := d.Period, d.Currency
	pg := Page{Title: "The five CFO metrics", Lead: fmt.Sprintf("Each metric for %s with its trend since January, read from the documented views.", p.Label)}
	labels := monthLabels(d, 1, p.LastMonth)

	// 1. Cost per business outcome.
	cpo := &Chart{Kind: ChartLine, Labels: labels, YLabel: cur + " per outcome"}
	t1 := &Table{Columns: []string{"Workflow", "Spend", "Outcomes", "Cost per outcome", "Previous period"}, Empty: "No workflow recorded usage."}
	var reading1 string
	var best decimal.Decimal
	for i := range d.Workflows {
		w := &d.Workflows[i]
		var vals []Value
		for m := 1; m <= p.LastMonth; m++ {
			vals = append(vals, w.Months[m].CostPerOutcome)
		}
		cpo.Series = append(cpo.Series, Series{w.Name, vals})
		sp, oc, _ := periodWorkflow(d, w, p.FirstMonth, p.LastMonth)
		prevFrom, prevTo := p.FirstMonth-(p.LastMonth-p.FirstMonth+1), p.FirstMonth-1
		var prev Value
		if prevFrom >= 1 {
			ps, po, _ := periodWorkflow(d, w, prevFrom, prevTo)
			prev = perOutcome(ps, po)
		}
		now := perOutcome(sp, oc)
		t1.Rows = append(t1.Rows, []Cell{text(w.Name), MoneyV(sp, noUsage), countV(oc, noOutcomes), MoneyV(now, noOutcomes), MoneyV(prev, "no data")})
		if now.OK && sp.OK && sp.D.GreaterThan(best) {
			best = sp.D
			reading1 = fmt.Sprintf("%s costs %s %s per outcome in %s", w.Name, cur, Money(now.D), p.Label)
			if prev.OK {
				reading1 += fmt.Sprintf(" (previous period %s)", Money(prev.D))
			}
			reading1 += "."
		}
	}
	if reading1 == "" {
		reading1 = "No workflow recorded outcomes in the period: cost per outcome is not defined."
	}
	pg.Blocks = append(pg.Blocks, Block{Title: "1. Cost per business outcome, by workflow", Reading: reading1, Chart: cpo, Table: t1})

	// 2. Forecast variance.
	var varPct []Value
	t2 := &Table{Columns: []string{"Month", "Actual", "Forecast", "Variance", "Variance %"}}
	for m := 1; m <= p.LastMonth; m++ {
		mf := &d.Months[m]
		a := spendV(mf)
		v, vp := Value{}, Value{}
		if a.OK && mf.Forecast.OK {
			v = V(a.D.Sub(mf.Forecast.D))
			vp = pctOf(v, mf.Forecast)
		}
		varPct = append(varPct, vp)
		if p.In(m) {
			t2.Rows = append(t2.Rows, []Cell{text(monthLabel(d, m)), MoneyV(a, noUsage), MoneyV(mf.Forecast, noForecast), MoneyV(v, "-"), PctV(vp, "-")})
		}
	}
	spend, fc := matched(d, p.FirstMonth, p.LastMonth, func(m *MonthFacts) Value { return m.Forecast })
	reading2 := "No forecast is approved for the period: variance is not defined (run `tokenmeter forecast approve`)."
	if fc.OK && spend.OK {
		v := spend.D.Sub(fc.D)
		word := "over"
		if v.IsNegative() {
			word = "under"
		}
		reading2 = fmt.Sprintf("%s %s %s forecast in the closed months of %s (%s).", cur, Money(v.Abs()), word, p.Label, Pct(pctOf(V(v), fc).D))
	}
	pg.Blocks = append(pg.Blocks, Block{Title: "2. Forecast variance", Reading: reading2,
		Chart: &Chart{Kind: ChartBar, Labels: labels, YLabel: "% of forecast", Series: []Series{{"Variance %", varPct}}}, Table: t2})

	// 3. Workflow profitability.
	t3 := &Table{Columns: []string{"Workflow", "Spend", "Value of outcomes", "Cost per outcome", "Value per outcome", "Net value"}, Empty: "No workflow recorded usage."}
	prof := &Chart{Kind: ChartBar, Labels: labels, YLabel: cur + " net value"}
	var worst string
	var worstNet decimal.Decimal
	for i := range d.Workflows {
		w := &d.Workflows[i]
		sp, oc, val := periodWorkflow(d, w, p.FirstMonth, p.LastMonth)
		net := Value{}
		if val.OK && sp.OK {
			net = V(val.D.Sub(sp.D))
		}
		t3.Rows = append(t3.Rows, []Cell{text(w.Name), MoneyV(sp, noUsage), MoneyV(val, "no values"), MoneyV(perOutcome(sp, oc), noOutcomes), MoneyV(perOutcome(val, oc), "no values"), MoneyV(net, "no values")})
		var nets []Value
		for m := 1; m <= p.LastMonth; m++ {
			wm := &w.Months[m]
			if wm.OutcomeValue.OK && wm.Spend.OK {
				nets = append(nets, V(wm.OutcomeValue.D.Sub(wm.Spend.D)))
			} else {
				nets = append(nets, Value{})
			}
		}
		prof.Series = append(prof.Series, Series{w.Name, nets})
		if net.OK && (worst == "" || net.D.LessThan(worstNet)) {
			worst, worstNet = w.Name, net.D
		}
	}
	reading3 := "No outcome values were recorded: profitability is not defined."
	if worst != "" {
		reading3 = fmt.Sprintf("Lowest net value: %s at %s %s in %s.", worst, cur, Money(worstNet), p.Label)
	}
	pg.Blocks = append(pg.Blocks, Block{Title: "3. Workflow profitability (value of outcomes - spend)", Reading: reading3, Chart: prof, Table: t3})

	// 4. Optimisation rate, quarter on quarter.
	t4 := &Table{Columns: []string{"Workflow", "Quarter", "Cost per outcome", "Previous quarter", "Change"}, Empty: "No quarter with outcomes yet."}
	qs := map[string]bool{}
	for _, r := range d.Optimisation {
		qs[r.Quarter] = true
	}
	var qLabels []string
	for q := range qs {
		qLabels = append(qLabels, q)
	}
	sort.Strings(qLabels)
	opt := &Chart{Kind: ChartLine, Labels: qLabels, YLabel: "% change per outcome"}
	byWf := map[string][]Value{}
	var order []string
	reading4 := "No quarter-on-quarter change yet (needs outcomes in two consecutive quarters)."
	for _, r := range d.Optimisation {
		if _, ok := byWf[r.Workflow]; !ok {
			byWf[r.Workflow] = make([]Value, len(qLabels))
			order = append(order, r.Workflow)
		}
		i := sort.SearchStrings(qLabels, r.Quarter)
		byWf[r.Workflow][i] = r.Change
		if r.Quarter == quarterOf(p) {
			t4.Rows = append(t4.Rows, []Cell{text(r.Workflow), text(r.Quarter), MoneyV(r.CostPerOutcome, noOutcomes), MoneyV(r.Previous, "no data"), PctV(r.Change, "-")})
			if r.Change.OK {
				reading4 = fmt.Sprintf("%s: cost per outcome %s quarter on quarter.", r.Workflow, Pct(r.Change.D))
			}
		}
	}
	for _, w := range order {
		opt.Series = append(opt.Series, Series{w, byWf[w]})
	}
	pg.Blocks = append(pg.Blocks, Block{Title: "4. Optimisation rate (change in cost per outcome, quarter on quarter)", Reading: reading4, Chart: opt, Table: t4})

	// 5. Budget compliance.
	var comp []Value
	byM := map[int]ComplianceFacts{}
	for _, c := range d.Compliance {
		byM[c.Month] = c
	}
	t5 := &Table{Columns: []string{"Month", "Status", "Budgets", "Within", "Share within", "Over budget"}, Empty: "No budgets were active."}
	reading5 := "No budgets were active in the period."
	for m := 1; m <= p.LastMonth; m++ {
		c, ok := byM[m]
		if !ok || !c.Share.OK {
			comp = append(comp, Value{})
		} else {
			comp = append(comp, V(c.Share.D.Mul(decimal.NewFromInt(100))))
		}
		if ok && p.In(m) {
			share := Value{}
			if c.Share.OK {
				share = V(c.Share.D.Mul(decimal.NewFromInt(100)))
			}
			t5.Rows = append(t5.Rows, []Cell{text(p.MonthLabel(m)), text(c.Status), num(fmt.Sprint(c.Budgets)), num(fmt.Sprint(c.Within)), PctV(share, "-"), text(strings.Join(c.OverBudgetIDs, ", "))})
			reading5 = fmt.Sprintf("%d of %d budgets within their amount in %s.", c.Within, c.Budgets, p.MonthLabel(m))
		}
	}
	pg.Blocks = append(pg.Blocks, Block{Title: "5. Budget compliance", Reading: reading5,
		Chart: &Chart{Kind: ChartLine, Labels: labels, YLabel: "% of budgets within", Series: []Series{{"Within budget", comp}}}, Table: t5})
	return pg
}

func quarterOf(p Period) string { return fmt.Sprintf("%04d-Q%d", p.Year, (p.FirstMonth-1)/3+1) }

func countV(v Value, missing string) Cell {
	if !v.OK {
		return Cell{Text: missing, Missing: true, Num: true}
	}
	return num(Count(v.D))
}

func moversPage(d *Data) Page {
	p, cur := d.Period, d.Currency
	pg := Page{Title: "Top movers"}
	n := p.LastMonth - p.FirstMonth + 1
	prevFrom, prevTo := p.FirstMonth-n, p.FirstMonth-1
	type mv struct {
		name              string
		now, prev, change Value
	}
	var ms []mv
	for i := range d.Workflows {
		w := &d.Workflows[i]
		sp, _, _ := periodWorkflow(d, w, p.FirstMonth, p.LastMonth)
		var prev Value
		if prevFrom >= 1 {
			prev, _, _ = periodWorkflow(d, w, prevFrom, prevTo)
		}
		ch := Value{}
		switch {
		case sp.OK && prev.OK:
			ch = V(sp.D.Sub(prev.D))
		case sp.OK:
			ch = sp
		case prev.OK:
			ch = V(prev.D.Neg())
		}
		ms = append(ms, mv{w.Name, sp, prev, ch})
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].change.D.Abs().GreaterThan(ms[j].change.D.Abs()) })
	t := &Table{Columns: []string{"Workflow", "This period (" + cur + ")", "Previous period", "Change", "Change %"}, Empty: "No workflow recorded usage."}
	for _, m := range ms {
		t.Rows = append(t.Rows, []Cell{text(m.name), MoneyV(m.now, noUsage), MoneyV(m.prev, "no usage"), MoneyV(m.change, "-"), PctV(pctOf(m.change, m.prev), "new")})
	}
	if prevFrom < 1 {
		t.Note = "The previous period is in the previous year, which this pack does not read."
	}
	switch {
	case len(ms) == 0:
		pg.Lead = "No usage in the period."
	case ms[0].change.OK:
		pg.Lead = fmt.Sprintf("Biggest mover: %s, %s %s against the previous period.", ms[0].name, cur, Money(ms[0].change.D))
	}
	pg.Blocks = []Block{{Title: "Spend change by workflow, largest first", Table: t}}
	return pg
}

func reconciliationPage(d *Data) Page {
	cur := d.Currency
	pg := Page{Title: "Reconciliation: bottom-up plan vs envelope"}
	r := d.Reconciliation
	if r != nil {
		pg.Title = fmt.Sprintf("Reconciliation: %d bottom-up plan vs envelope", r.Year)
	}
	if r == nil {
		pg.Lead = "No plan with an envelope, so there is no bottom-up forecast to reconcile (tokenmeter report board-pack -plan FILE, or approve a plan with an envelope: section)."
		return pg
	}
	word := "within"
	if r.Over() {
		word = "over"
	}
	pg.Lead = fmt.Sprintf("The bottom-up year is %s %s, %s the envelope of %s %s by %s %s.", cur, Money(r.BottomUp), word, cur, Money(r.Envelope), cur, Money(r.Gap.Abs()))
	if r.Over() && len(r.Options) > 0 {
		if r.Closes {
			pg.Lead += fmt.Sprintf(" Pulling the %d options below closes the gap.", len(r.Options))
		} else {
			pg.Lead += " The options below do not close the gap."
		}
	}
	mt := &Table{Columns: []string{"Month", "Bottom-up", "Basis", "Envelope", "Gap"}}
	var bu, env []Value
	var labels []string
	for _, m := range r.Months {
		basis := "model"
		if m.Actual {
			basis = "actual"
		}
		mt.Rows = append(mt.Rows, []Cell{text(m.Month.Label(r.Year)), num(Money(m.BottomUp)), text(basis), num(Money(m.Envelope)), num(Money(m.Gap))})
		bu, env = append(bu, V(m.BottomUp)), append(env, V(m.Envelope))
		labels = append(labels, m.Month.Label(r.Year))
	}
	mt.Rows = append(mt.Rows, []Cell{text("Year"), num(Money(r.BottomUp)), text(""), num(Money(r.Envelope)), num(Money(r.Gap))})
	pg.Blocks = append(pg.Blocks, Block{Title: "By month", Chart: &Chart{Kind: ChartBar, Labels: labels, YLabel: cur, Series: []Series{{"Bottom-up", bu}, {"Envelope", env}}}, Table: mt})
	if len(r.Teams) > 0 {
		tt := &Table{Columns: []string{"Team", "Bottom-up", "Envelope", "Gap"}}
		for _, t := range r.Teams {
			tt.Rows = append(tt.Rows, []Cell{text(t.Team), num(Money(t.BottomUp)), num(Money(t.Envelope)), num(Money(t.Gap))})
		}
		pg.Blocks = append(pg.Blocks, Block{Title: "By team", Table: tt})
	}
	ot := &Table{Columns: []string{"#", "Option", "Saving", "Cost to users", "Closes the gap alone", "Gap after options 1..#"}, Empty: "The plan is within the envelope: no options needed."}
	for _, o := range r.Options {
		closes := "no"
		if o.ClosesAlone {
			closes = "yes"
		}
		ot.Rows = append(ot.Rows, []Cell{num(fmt.Sprint(o.Rank)), text(o.What), num(Money(o.Saving)), text(o.UX), text(closes), num(Money(o.GapAfter))})
	}
	if r.Over() && len(r.Options) == 0 {
		ot.Empty = "The plan is over the envelope and offers no levers (add levers: to its workflows)."
	}
	pg.Blocks = append(pg.Blocks, Block{Title: "Options, largest saving first", Reading: fmt.Sprintf("Each saving is the plan re-priced by the forecast model with the lever pulled, from %s on.", r.From.Label(r.Year)), Table: ot})
	if len(d.Bridge) > 0 {
		bt := &Table{Columns: []string{"Month", "Forecast", "Actual", "Variance", "Volume", "Mix", "Efficiency", "Price", "FX"}}
		for _, b := range d.Bridge {
			v, vol, mix, eff, pr, fx := b.Shown(2)
			bt.Rows = append(bt.Rows, []Cell{text(b.Month.Label(d.Period.Year)), num(Money(b.Forecast)), num(Money(b.Actual)), num(Money(v)),
				num(Money(vol)), num(Money(mix)), num(Money(eff)), num(Money(pr)), num(Money(fx))})
		}
		title := fmt.Sprintf("Variance bridge, closed months of %d", d.Period.Year)
		if d.Forecast != nil {
			title += " against forecast version " + d.Forecast.ID
		}
		pg.Blocks = append(pg.Blocks, Block{Title: title, Reading: "Volume (calls) + mix (workflows and models) + efficiency (tokens per call, cache rate) + price (catalogue and contracts) + FX = variance, exactly (shown to the cent).", Table: bt})
	}
	return pg
}

func budgetsPage(d *Data) Page {
	pg := Page{Title: "Budget alerts and denials"}
	loc := d.location()
	at := &Table{Columns: []string{"Time (" + d.TimeZone + ")", "Budget", "Alert", "Scope", "Detail"}, Empty: "No budget alerts in the period."}
	for _, a := range d.Alerts {
		at.Rows = append(at.Rows, []Cell{text(a.Time.In(loc).Format("2006-01-02 15:04")), text(a.BudgetID), text(a.Kind), text(a.Scope), text(a.Detail)})
	}
	dt := &Table{Columns: []string{"Budget", "Denied requests"}, Empty: "No requests were denied in the period."}
	var denied int64
	if d.Denials == nil {
		dt.Empty = "Denials are not recorded in ClickHouse by this deployment (the decision API counts them in its metrics)."
	} else {
		for _, x := range *d.Denials {
			dt.Rows = append(dt.Rows, []Cell{text(x.Reason), num(fmt.Sprint(x.Count))})
			denied += x.Count
		}
	}
	pg.Lead = fmt.Sprintf("%d budget alert(s) in %s.", len(d.Alerts), d.Period.Label)
	if d.Denials != nil {
		pg.Lead = fmt.Sprintf("%d budget alert(s) and %d denied request(s) in %s.", len(d.Alerts), denied, d.Period.Label)
	}
	pg.Blocks = []Block{{Title: "Alerts", Table: at}, {Title: "Denials by the decision API", Table: dt}}
	return pg
}

func savingsPage(d *Data) Page {
	cur, p := d.Currency, d.Period
	pg := Page{Title: "Caching and routing savings realised"}
	t := &Table{Columns: []string{"Month", "Cache savings (" + cur + ")", "Routing savings (" + cur + ")"}}
	var cache, routing Value
	var labels []string
	var cs, rs []Value
	byM := map[int]SavingsFacts{}
	for _, s := range d.Savings {
		byM[s.Month] = s
	}
	for m := p.FirstMonth; m <= p.LastMonth; m++ {
		s := byM[m]
		labels = append(labels, p.MonthLabel(m))
		cs, rs = append(cs, s.Cache), append(rs, s.Routing)
		t.Rows = append(t.Rows, []Cell{text(p.MonthLabel(m)), MoneyV(s.Cache, noUsage), MoneyV(s.Routing, "no plan")})
		if s.Cache.OK {
			cache.D, cache.OK = cache.D.Add(s.Cache.D), true
		}
		if s.Routing.OK {
			routing.D, routing.OK = routing.D.Add(s.Routing.D), true
		}
	}
	t.Rows = append(t.Rows, []Cell{text(p.Label), MoneyV(cache, noUsage), MoneyV(routing, "no plan")})
	pg.Metrics = []Metric{
		metric("Cache savings", cache, cur, noUsage, "cache reads priced against the uncached input price"),
		metric("Routing savings", routing, cur, "no plan", "calls on cheaper models priced against the workflow's planned main model"),
	}
	pg.Lead = "Savings against what the same calls would have cost without the cache and on the workflow's main model."
	pg.Blocks = []Block{{Title: "By month", Chart: &Chart{Kind: ChartBar, Labels: labels, YLabel: cur, Series: []Series{{"Cache", cs}, {"Routing", rs}}}, Table: t}}
	return pg
}

func qualityPage(d *Data) Page {
	p, q := d.Period, d.Quality
	pg := Page{Title: "Data quality"}
	ut := &Table{Columns: []string{"Month", "Spend without a workflow"}}
	for i, m := 0, p.FirstMonth; m <= p.LastMonth; i, m = i+1, m+1 {
		v := Value{}
		if i < len(q.Unattributed) {
			v = q.Unattributed[i]
		}
		ut.Rows = append(ut.Rows, []Cell{text(p.MonthLabel(m)), PctV(v, noUsage)})
	}
	dt := &Table{Columns: []string{"Reason", "Events"}, Empty: "No rejected events in the period."}
	var dlq int64
	for _, r := range q.DLQ {
		dt.Rows = append(dt.Rows, []Cell{text(r.Reason), num(fmt.Sprint(r.Count))})
		dlq += r.Count
	}
	pg.Lead = fmt.Sprintf("%d usage event(s) priced in %s; %d rejected to the DLQ (unpriced or invalid).", q.Events, p.Label, dlq)
	if q.Incomplete != nil {
		pg.Lead += fmt.Sprintf(" %d flagged incomplete by their source.", *q.Incomplete)
	} else {
		pg.Notes = append(pg.Notes, "Usage-completeness flags: not recorded by this pipeline's event schema, so not shown.")
	}
	pg.Blocks = []Block{{Title: "Unattributed spend", Table: ut}, {Title: "Rejected events (DLQ) by reason", Table: dt}}
	return pg
}

// leversPage shows the largest saving found for each lever, then the top
// savings overall (docs/levers.md).
func leversPage(d *Data) Page {
	pg := Page{Title: "Savings per lever"}
	if d.Levers == nil {
		pg.Lead = "The levers analysis was not run for this pack."
		return pg
	}
	all := *d.Levers
	if len(all) == 0 {
		pg.Lead = "No routing, prompt or caching saving was found in the period's calls."
		return pg
	}
	best := &Table{Columns: []string{"Lever", "Workflow", "Saving", "What"}}
	seen := map[string]bool{}
	for _, s := range all {
		if seen[s.Lever] {
			continue
		}
		seen[s.Lever] = true
		best.Rows = append(best.Rows, []Cell{text(s.Lever), text(s.Workflow), num(s.Currency + " " + Money(s.Amount)), text(s.What)})
	}
	top := &Table{Columns: []string{"#", "Lever", "Workflow", "Saving", "What"}}
	for i, s := range all {
		if i == 5 {
			break
		}
		top.Rows = append(top.Rows, []Cell{num(fmt.Sprint(i + 1)), text(s.Lever), text(s.Workflow), num(s.Currency + " " + Money(s.Amount)), text(s.What)})
	}
	first := all[0]
	pg.Lead = fmt.Sprintf("The largest saving found: %s %s in %s (%s).", first.Currency, Money(first.Amount), first.Workflow, first.What)
	pg.Blocks = []Block{
		{Title: "Largest saving per lever", Reading: "Routing and long-context savings re-price the period's real calls with the pricing engine; prompt savings are the extra cost of versions that raised cost per outcome; caching savings assume the stated hit rate.", Table: best},
		{Title: "Top savings", Table: top},
	}
	return pg
}
