package offers

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/procurement"
)

// Baselines names the two reference columns of every comparison.
const (
	BaselineList    = "list"    // catalogue prices, no contract
	BaselineCurrent = "current" // the pipeline's contracts file as it is
)

// Prices is what the simulator prices with: the pipeline's catalogues,
// current contracts and FX as parsed files, so every offer's engine is built
// by internal/pricing from the same catalogue (no second copy of a price).
type Prices struct {
	Catalogues []*pricing.CatalogueFile
	Names      []string
	Contracts  *pricing.ContractsFile // current contracts; nil = none
	FX         *pricing.FXFile
}

// Simulator replays usage under offers. Build it with New.
type Simulator struct {
	file    *File
	list    *pricing.Engine
	current *pricing.Engine
	offer   map[string]*pricing.Engine
}

// New builds one pricing engine per offer (its discount and contracted
// prices become a contracts file for the tenant and provider) besides the
// list and current engines.
func New(f *File, p Prices) (*Simulator, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	s := &Simulator{file: f, offer: map[string]*pricing.Engine{}}
	var err error
	if s.list, err = pricing.New(p.Catalogues, p.Names, nil, p.FX); err != nil {
		return nil, err
	}
	if s.current, err = pricing.New(p.Catalogues, p.Names, p.Contracts, p.FX); err != nil {
		return nil, err
	}
	for i, o := range f.Offers {
		cf := offerContracts(f, &o)
		e, err := pricing.New(p.Catalogues, p.Names, cf, p.FX)
		if err != nil {
			return nil, fmt.Errorf("offers[%d] (%s): %w", i, o.ID, err)
		}
		s.offer[o.ID] = e
	}
	return s, nil
}

// offerContracts expresses an offer's rates as pricing contracts: a provider
// contract with the discount and one model contract per priced model (same
// discount for the classes it does not price).
func offerContracts(f *File, o *Offer) *pricing.ContractsFile {
	const from = "1970-01-01"
	cf := &pricing.ContractsFile{}
	if o.DiscountPercent.Set {
		cf.Contracts = append(cf.Contracts, pricing.Contract{ID: "offer:" + o.ID, Tenant: f.Tenant, Provider: f.Provider,
			ValidFrom: from, DiscountPercent: o.DiscountPercent})
	}
	models := make([]string, 0, len(o.Prices))
	for m := range o.Prices {
		models = append(models, m)
	}
	sort.Strings(models)
	for _, m := range models {
		cf.Contracts = append(cf.Contracts, pricing.Contract{ID: "offer:" + o.ID + ":" + m, Tenant: f.Tenant, Provider: f.Provider,
			Model: m, ValidFrom: from, DiscountPercent: o.DiscountPercent, Prices: o.Prices[m]})
	}
	return cf
}

// Result is one offer (or baseline) over one set of months.
type Result struct {
	Offer    string
	Scenario string
	// List is the list cost of the usage as metered (before shifts).
	List decimal.Decimal
	// Rated is the usage priced at the offer's rates after shifts and
	// provisioned coverage, before the tiered discount.
	Rated           decimal.Decimal
	TierDiscount    decimal.Decimal
	OveragePremium  decimal.Decimal // + when overage is dearer than the rates
	ShortfallPaid   decimal.Decimal // commitment true-ups billed
	ProvisionedFees decimal.Decimal
	CreditsBought   decimal.Decimal // prices paid for prepaid credits
	CreditsUsed     decimal.Decimal
	CreditsExpired  decimal.Decimal // face value left when a credit's last month ended
	CreditsLeft     decimal.Decimal // face value still valid after the last simulated month
	// Cost is what the offer costs over the months: provisioned fees +
	// rated − tier discount + overage premium + shortfall paid − usage paid
	// by credits + credits bought.
	Cost decimal.Decimal
}

// Unused is the money paid for commitment that bought nothing: shortfall
// true-ups plus expired credits (at their face value's purchase share).
func (r *Result) Unused() decimal.Decimal { return r.ShortfallPaid.Add(r.CreditsExpired) }

// Saving is base − r.Cost.
func (r *Result) Saving(base *Result) decimal.Decimal { return base.Cost.Sub(r.Cost) }

// Baseline prices usage at list or under the current contracts.
func (s *Simulator) Baseline(name string, months []string, usage []procurement.Usage) (*Result, error) {
	eng := s.list
	if name == BaselineCurrent {
		eng = s.current
	}
	r := &Result{Offer: name}
	for _, u := range s.filter(months, usage) {
		p, err := procurement.Price(eng, &u)
		if err != nil {
			return nil, err
		}
		lp, err := procurement.Price(s.list, &u)
		if err != nil {
			return nil, err
		}
		r.List = r.List.Add(lp.ListCost.Decimal())
		r.Rated = r.Rated.Add(p.ContractedCost.Decimal())
	}
	r.Cost = r.Rated
	return r, nil
}

func (s *Simulator) filter(months []string, usage []procurement.Usage) []procurement.Usage {
	in := map[string]bool{}
	for _, m := range months {
		in[m] = true
	}
	var out []procurement.Usage
	for _, u := range usage {
		if in[u.Period] && u.Tenant == s.file.Tenant && strings.EqualFold(u.Provider, s.file.Provider) {
			out = append(out, u)
		}
	}
	return out
}

// Offer replays usage over months (in order; month 1 is months[0]) under the
// offer with id. extraBP is an extra discount in basis points on the rated
// spend, used to search for counter-offers (0 for the offer as written).
func (s *Simulator) Offer(id string, months []string, usage []procurement.Usage, extraBP int64) (*Result, error) {
	var o *Offer
	for i := range s.file.Offers {
		if s.file.Offers[i].ID == id {
			o = &s.file.Offers[i]
		}
	}
	if o == nil {
		return nil, fmt.Errorf("no offer %q", id)
	}
	eng := s.offer[id]
	r := &Result{Offer: id}
	rows := s.filter(months, usage)
	byMonth := map[string][]procurement.Usage{}
	for _, u := range rows {
		lp, err := procurement.Price(s.list, &u)
		if err != nil {
			return nil, err
		}
		r.List = r.List.Add(lp.ListCost.Decimal())
		byMonth[u.Period] = append(byMonth[u.Period], u)
	}
	spend := make([]decimal.Decimal, len(months)) // per month, after tiers
	extra := decimal.New(10000-extraBP, -4)
	for i, m := range months {
		mrows, err := s.shift(o, byMonth[m])
		if err != nil {
			return nil, err
		}
		mrows, fees, err := s.provision(o, m, mrows)
		if err != nil {
			return nil, err
		}
		r.ProvisionedFees = r.ProvisionedFees.Add(fees)
		rated := decimal.Zero
		for _, u := range mrows {
			p, err := procurement.Price(eng, &u)
			if err != nil {
				return nil, err
			}
			rated = rated.Add(p.ContractedCost.Decimal())
		}
		if extraBP != 0 {
			rated = rated.Mul(extra)
		}
		r.Rated = r.Rated.Add(rated)
		d := TierDiscount(o.Tiered, rated)
		r.TierDiscount = r.TierDiscount.Add(d)
		spend[i] = rated.Sub(d)
	}
	charges := s.commit(o, spend, r)
	s.credits(o, charges, r)
	r.Cost = r.ProvisionedFees.Add(r.CreditsBought)
	for _, c := range charges {
		r.Cost = r.Cost.Add(c)
	}
	r.Cost = r.Cost.Sub(r.CreditsUsed)
	return r, nil
}

// TierDiscount is the tiered volume discount on one month's spend. Marginal:
// Σ over tiers of (the part of spend in [from_i, from_i+1)) × percent_i.
// Whole volume: spend × percent of the highest tier whose from ≤ spend.
func TierDiscount(t *Tiered, spend decimal.Decimal) decimal.Decimal {
	if t == nil || !spend.IsPositive() {
		return decimal.Zero
	}
	if t.Basis == "whole_volume" {
		pct := decimal.Zero
		for _, tr := range t.Tiers {
			if spend.GreaterThanOrEqual(tr.From.D) {
				pct = tr.Percent.D
			}
		}
		return spend.Mul(pct).Div(hundred)
	}
	total := decimal.Zero
	for i, tr := range t.Tiers {
		if spend.LessThanOrEqual(tr.From.D) {
			break
		}
		top := spend
		if i+1 < len(t.Tiers) && t.Tiers[i+1].From.D.LessThan(spend) {
			top = t.Tiers[i+1].From.D
		}
		total = total.Add(top.Sub(tr.From.D).Mul(tr.Percent.D))
	}
	return total.Div(hundred)
}

// shift moves the offer's shares of usage between tiers. Counts move rounded
// down; the remainder stays where it was.
func (s *Simulator) shift(o *Offer, rows []procurement.Usage) ([]procurement.Usage, error) {
	if len(o.Shifts) == 0 {
		return rows, nil
	}
	var out []procurement.Usage
	for _, u := range rows {
		model, err := s.canonical(&u)
		if err != nil {
			return nil, err
		}
		cur := u
		for _, sh := range o.Shifts {
			if !strings.EqualFold(sh.Model, model) || cur.Tier != sh.From {
				continue
			}
			bp := sh.Percent.D.Mul(hundred).IntPart() // ≤ 2 decimals (validated)
			moved := cur.Scale(bp, 10000)
			cur = cur.Sub(moved)
			moved.Tier = sh.To
			out = append(out, moved)
		}
		out = append(out, cur)
	}
	return out, nil
}

func (s *Simulator) canonical(u *procurement.Usage) (string, error) {
	at, err := procurement.PeriodStart(u.Period)
	if err != nil {
		return "", err
	}
	info, err := s.list.Lookup(u.Provider, u.Model, at)
	if err != nil {
		return "", fmt.Errorf("%s %s/%s: %w", u.Period, u.Provider, u.Model, err)
	}
	return info.Model, nil
}

// hoursIn is the number of hours in a calendar month (UTC).
func hoursIn(period string) int64 {
	t, _ := procurement.PeriodStart(period)
	return int64(t.AddDate(0, 1, 0).Sub(t) / time.Hour)
}

// provision takes the part of each provisioned model's usage the reserved
// capacity serves out of on-demand billing (capacity/usage of every count,
// rounded down) and returns the month's fixed fees.
func (s *Simulator) provision(o *Offer, period string, rows []procurement.Usage) ([]procurement.Usage, decimal.Decimal, error) {
	fees := decimal.Zero
	if len(o.Provisioned) == 0 {
		return rows, fees, nil
	}
	hours := hoursIn(period)
	for _, pt := range o.Provisioned {
		fees = fees.Add(pt.PricePerUnitHour.D.Mul(decimal.NewFromInt(pt.Units * hours)))
		capacity := pt.Units * hours * pt.TokensPerUnitHour
		var total int64
		var idx []int
		for i := range rows {
			m, err := s.canonical(&rows[i])
			if err != nil {
				return nil, fees, err
			}
			if strings.EqualFold(m, pt.Model) {
				total += rows[i].Tokens()
				idx = append(idx, i)
			}
		}
		for _, i := range idx {
			if total <= capacity {
				rows[i] = rows[i].Scale(0, 1)
				continue
			}
			rows[i] = rows[i].Sub(rows[i].Scale(capacity, total))
		}
	}
	return rows, fees, nil
}

// commit applies the commitment per period to the months' spend and returns
// each month's charge (overage premium and true-ups fall in a period's last
// month).
func (s *Simulator) commit(o *Offer, spend []decimal.Decimal, r *Result) []decimal.Decimal {
	charges := append([]decimal.Decimal(nil), spend...)
	c := o.Commitment
	if c == nil || len(spend) == 0 {
		return charges
	}
	k := periodMonths(c.Period)
	if k < 0 {
		k = len(spend)
	}
	carry := decimal.Zero
	for start := 0; start < len(spend); start += k {
		end := start + k
		if end > len(spend) {
			end = len(spend)
		}
		p := decimal.Zero
		for _, v := range spend[start:end] {
			p = p.Add(v)
		}
		due := c.Amount.D.Add(carry)
		carry = decimal.Zero
		last := end - 1
		if p.GreaterThanOrEqual(due) {
			prem := p.Sub(due).Mul(c.OveragePercent.D.Sub(hundred)).Div(hundred)
			r.OveragePremium = r.OveragePremium.Add(prem)
			charges[last] = charges[last].Add(prem)
			continue
		}
		short := due.Sub(p)
		switch c.Shortfall {
		case "pay":
			r.ShortfallPaid = r.ShortfallPaid.Add(short)
			charges[last] = charges[last].Add(short)
		case "carry_forward":
			if end == len(spend) {
				r.ShortfallPaid = r.ShortfallPaid.Add(short)
				charges[last] = charges[last].Add(short)
			} else {
				carry = short // the whole shortfall rolls over
			}
		}
	}
	return charges
}

// credits draws each month's charge from the prepaid credits valid that
// month, soonest-expiring first; what a credit has left after its last month
// expires. Credits bought after the last month are not bought.
func (s *Simulator) credits(o *Offer, charges []decimal.Decimal, r *Result) {
	if len(o.Credits) == 0 {
		return
	}
	type bal struct {
		left       decimal.Decimal
		first, end int // months [first, end)
	}
	var bs []*bal
	for _, c := range o.Credits {
		if c.Month > len(charges) {
			continue
		}
		r.CreditsBought = r.CreditsBought.Add(c.Price.D)
		bs = append(bs, &bal{left: c.Amount.D, first: c.Month - 1, end: c.Month - 1 + c.ValidMonths})
	}
	sort.SliceStable(bs, func(i, j int) bool { return bs[i].end < bs[j].end })
	for m, ch := range charges {
		need := ch
		for _, b := range bs {
			if m < b.first || m >= b.end || !need.IsPositive() || !b.left.IsPositive() {
				continue
			}
			use := decimal.Min(need, b.left)
			b.left = b.left.Sub(use)
			need = need.Sub(use)
			r.CreditsUsed = r.CreditsUsed.Add(use)
		}
	}
	for _, b := range bs {
		if b.end <= len(charges) { // expired within the simulated months
			r.CreditsExpired = r.CreditsExpired.Add(b.left)
		} else {
			r.CreditsLeft = r.CreditsLeft.Add(b.left)
		}
	}
}
