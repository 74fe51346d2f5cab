// Package offers is the contract simulator: vendors' offered terms, replayed
// against a tenant's metered usage and against adoption scenarios for the
// contract term, priced with the pipeline's own engine (internal/pricing).
// The file format is documented in docs/procurement.md.
package offers

import (
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/confload"
	"os"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/procurement"
)

// File is an offers file: one tenant, one provider, several offers compared
// with each other, with list price and with the current contract.
type File struct {
	// Tenant whose usage is replayed (required).
	Tenant string `yaml:"tenant"`
	// Provider the offers are for (OTel gen_ai.provider.name, required);
	// usage of other providers is not part of the comparison.
	Provider string `yaml:"provider"`
	// Window of actual usage replayed, inclusive YYYY-MM months (required).
	Window Months `yaml:"window"`
	// Term of the contract the scenarios cover (required).
	Term Months `yaml:"term"`
	// Scenarios: name → percent of actual usage, used when no forecast is
	// plugged in (scaled actuals, labelled as such). Default low 50,
	// expected 100, high 150.
	Scenarios map[string]int64 `yaml:"scenarios,omitempty"`
	Offers    []Offer          `yaml:"offers"`
}

// Months is an inclusive range of calendar months.
type Months struct {
	From string `yaml:"from"` // YYYY-MM
	To   string `yaml:"to"`   // YYYY-MM, ≥ From
}

// List expands the range (nil for an invalid one).
func (m Months) List() []string {
	a, err1 := procurement.PeriodStart(m.From)
	b, err2 := procurement.PeriodStart(m.To)
	if err1 != nil || err2 != nil || b.Before(a) {
		return nil
	}
	var out []string
	for t := a; !t.After(b); t = t.AddDate(0, 1, 0) {
		out = append(out, t.Format("2006-01"))
	}
	return out
}

// Offer is one vendor offer. Every part is optional; an offer with none is
// list price. The parts apply in this order each month: shifts, provisioned
// throughput, rates (discount and contracted prices), tiered discount on the
// month's spend, commitment per commitment period, prepaid credits.
type Offer struct {
	ID string `yaml:"id"`
	// DiscountPercent off list on every class without a contracted price.
	DiscountPercent pricing.Amount `yaml:"discount_percent,omitempty"`
	// Prices: contracted rates per model (catalogue name) and tier, in the
	// catalogue's shape (per million tokens).
	Prices map[string]map[string]pricing.Rates `yaml:"prices,omitempty"`
	// Tiered volume discount on the month's spend after rates.
	Tiered *Tiered `yaml:"tiered_discount,omitempty"`
	// Commitment: a committed spend per period.
	Commitment *Commitment `yaml:"commitment,omitempty"`
	// Credits: prepaid credits with expiry.
	Credits []Credit `yaml:"credits,omitempty"`
	// Shifts: share of a model's usage moved to another tier (batch, flex).
	Shifts []Shift `yaml:"shifts,omitempty"`
	// Provisioned throughput bought at a fixed price per capacity unit-hour.
	Provisioned []Provisioned `yaml:"provisioned,omitempty"`
}

// Tiered volume discount. Basis marginal: each tier's percent applies to the
// part of the spend inside that tier (tax-bracket style). Basis
// whole_volume: the percent of the highest tier reached applies to all of it.
type Tiered struct {
	Basis string `yaml:"basis"` // marginal | whole_volume
	Tiers []Tier `yaml:"tiers"` // ascending From; the first From must be 0
}

// Tier starts at From (spend per month) with Percent off.
type Tier struct {
	From    pricing.Amount `yaml:"from"`
	Percent pricing.Amount `yaml:"percent"`
}

// Commitment is a committed spend per period.
type Commitment struct {
	Amount pricing.Amount `yaml:"amount"` // per period, > 0
	Period string         `yaml:"period"` // month | quarter | year | term (default month)
	// OveragePercent prices spend above the commitment as a percent of the
	// offer's rates (default 100: same rates; 110: a 10 % premium).
	OveragePercent pricing.Amount `yaml:"overage_percent,omitempty"`
	// Shortfall: what happens when a period's spend is below Amount.
	// pay (default): the difference is billed at the period's end (true-up).
	// carry_forward: the difference is added to the next period's amount;
	// what is still short at the term's end is billed then.
	// waive: nothing is billed (a soft commitment).
	Shortfall string `yaml:"shortfall,omitempty"`
}

// Credit is a prepaid credit: Price paid upfront in month Month of the
// simulated months (1 = the first) for Amount of usage, usable in that month
// and the ValidMonths − 1 after it; what is left then expires unused.
// Months are counted from the start so the same offer replays over the actual
// window and over the term.
type Credit struct {
	Amount      pricing.Amount `yaml:"amount"`
	Price       pricing.Amount `yaml:"price,omitempty"` // default Amount (no discount for prepaying)
	Month       int            `yaml:"month,omitempty"` // default 1
	ValidMonths int            `yaml:"valid_months"`    // > 0
}

// Shift moves Percent of a model's From-tier usage to the To tier.
type Shift struct {
	Model   string         `yaml:"model"`
	From    string         `yaml:"from,omitempty"` // default standard
	To      string         `yaml:"to"`             // batch | flex | priority | standard
	Percent pricing.Amount `yaml:"percent"`        // 0..100, whole or with up to 2 decimals
}

// Provisioned is reserved capacity for one model: Units × hours in the month
// × PricePerUnitHour, serving up to TokensPerUnitHour × Units × hours tokens
// (input + output) of the month's usage; the rest is billed on demand. It
// assumes load spread evenly over the month, so it is the best case for the
// reservation: real peaks leave capacity idle.
type Provisioned struct {
	Model             string         `yaml:"model"`
	Units             int64          `yaml:"units"`
	PricePerUnitHour  pricing.Amount `yaml:"price_per_unit_hour"`
	TokensPerUnitHour int64          `yaml:"tokens_per_unit_hour"`
}

// Read reads and validates an offers file.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse parses and validates an offers file (unknown fields are errors).
func Parse(b []byte) (*File, error) {
	var f File
	if err := confload.Strict(b, &f); err != nil {
		return nil, fmt.Errorf("offers: %w", err)
	}
	f.SetDefaults()
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// SetDefaults fills the documented defaults.
func (f *File) SetDefaults() {
	if len(f.Scenarios) == 0 {
		f.Scenarios = map[string]int64{"low": 50, "expected": 100, "high": 150}
	}
	for i := range f.Offers {
		o := &f.Offers[i]
		if o.Commitment != nil {
			if o.Commitment.Period == "" {
				o.Commitment.Period = "month"
			}
			if o.Commitment.Shortfall == "" {
				o.Commitment.Shortfall = "pay"
			}
			if !o.Commitment.OveragePercent.Set {
				o.Commitment.OveragePercent, _ = pricing.A("100")
			}
		}
		for j := range o.Shifts {
			if o.Shifts[j].From == "" {
				o.Shifts[j].From = "standard"
			}
		}
		for j := range o.Credits {
			if !o.Credits[j].Price.Set {
				o.Credits[j].Price = o.Credits[j].Amount
			}
			if o.Credits[j].Month == 0 {
				o.Credits[j].Month = 1
			}
		}
	}
}

var (
	hundred = decimal.NewFromInt(100)
	tiers   = map[string]bool{"standard": true, "batch": true, "flex": true, "priority": true}
)

func percentOK(a pricing.Amount) bool {
	return a.Set && !a.D.IsNegative() && a.D.LessThanOrEqual(hundred)
}

// Validate reports every problem with its path (offers[1].commitment.amount: …).
func (f *File) Validate() error {
	var errs []error
	bad := func(path, format string, a ...any) { errs = append(errs, fmt.Errorf(path+": "+format, a...)) }
	if f.Tenant == "" {
		bad("tenant", "required")
	}
	if f.Provider == "" {
		bad("provider", "required")
	}
	for _, m := range []struct {
		name string
		v    Months
	}{{"window", f.Window}, {"term", f.Term}} {
		if m.v.List() == nil {
			bad(m.name, "from %q and to %q must be YYYY-MM months with from <= to", m.v.From, m.v.To)
		}
	}
	for n, p := range f.Scenarios {
		if p < 0 || p > 10000 {
			bad("scenarios."+n, "percent %d must be 0..10000", p)
		}
	}
	if len(f.Offers) == 0 {
		bad("offers", "at least one offer is required")
	}
	ids := map[string]bool{}
	for i, o := range f.Offers {
		p := fmt.Sprintf("offers[%d]", i)
		switch {
		case o.ID == "":
			bad(p+".id", "required")
		case ids[o.ID]:
			bad(p+".id", "%q is used twice", o.ID)
		case o.ID == "list" || o.ID == "current":
			bad(p+".id", "%q is reserved for the baselines", o.ID)
		}
		ids[o.ID] = true
		if o.DiscountPercent.Set && !percentOK(o.DiscountPercent) {
			bad(p+".discount_percent", "%s must be 0..100", o.DiscountPercent)
		}
		for model, byTier := range o.Prices {
			for tier := range byTier {
				if !tiers[tier] {
					bad(fmt.Sprintf("%s.prices.%s.%s", p, model, tier), "unknown tier (standard, batch, flex, priority)")
				}
			}
		}
		if t := o.Tiered; t != nil {
			if t.Basis != "marginal" && t.Basis != "whole_volume" {
				bad(p+".tiered_discount.basis", "%q is not marginal or whole_volume", t.Basis)
			}
			if len(t.Tiers) == 0 {
				bad(p+".tiered_discount.tiers", "at least one tier is required")
			}
			for j, tr := range t.Tiers {
				tp := fmt.Sprintf("%s.tiered_discount.tiers[%d]", p, j)
				if !tr.From.Set || tr.From.D.IsNegative() {
					bad(tp+".from", "required, >= 0")
				} else if j == 0 && !tr.From.D.IsZero() {
					bad(tp+".from", "the first tier must start at 0")
				} else if j > 0 && t.Tiers[j-1].From.Set && !tr.From.D.GreaterThan(t.Tiers[j-1].From.D) {
					bad(tp+".from", "%s must be greater than the previous tier's %s", tr.From, t.Tiers[j-1].From)
				}
				if !percentOK(tr.Percent) {
					bad(tp+".percent", "required, 0..100")
				}
			}
		}
		if c := o.Commitment; c != nil {
			cp := p + ".commitment"
			if !c.Amount.Set || !c.Amount.D.IsPositive() {
				bad(cp+".amount", "required, > 0")
			}
			if periodMonths(c.Period) == 0 {
				bad(cp+".period", "%q is not month, quarter, year or term", c.Period)
			}
			if c.OveragePercent.D.IsNegative() {
				bad(cp+".overage_percent", "must be >= 0")
			}
			if c.Shortfall != "pay" && c.Shortfall != "carry_forward" && c.Shortfall != "waive" {
				bad(cp+".shortfall", "%q is not pay, carry_forward or waive", c.Shortfall)
			}
		}
		for j, c := range o.Credits {
			cp := fmt.Sprintf("%s.credits[%d]", p, j)
			if !c.Amount.Set || !c.Amount.D.IsPositive() {
				bad(cp+".amount", "required, > 0")
			}
			if c.Price.D.IsNegative() {
				bad(cp+".price", "must be >= 0")
			}
			if c.Month < 1 {
				bad(cp+".month", "must be >= 1 (1 = the first simulated month)")
			}
			if c.ValidMonths < 1 {
				bad(cp+".valid_months", "required, >= 1")
			}
		}
		for j, s := range o.Shifts {
			sp := fmt.Sprintf("%s.shifts[%d]", p, j)
			if s.Model == "" {
				bad(sp+".model", "required")
			}
			if !tiers[s.From] {
				bad(sp+".from", "unknown tier %q", s.From)
			}
			if !tiers[s.To] || s.To == s.From {
				bad(sp+".to", "%q must be a tier other than from", s.To)
			}
			if !percentOK(s.Percent) || s.Percent.D.Exponent() < -2 {
				bad(sp+".percent", "required, 0..100 with at most 2 decimals")
			}
		}
		for j, pt := range o.Provisioned {
			pp := fmt.Sprintf("%s.provisioned[%d]", p, j)
			if pt.Model == "" {
				bad(pp+".model", "required")
			}
			if pt.Units <= 0 {
				bad(pp+".units", "must be > 0")
			}
			if !pt.PricePerUnitHour.Set || pt.PricePerUnitHour.D.IsNegative() {
				bad(pp+".price_per_unit_hour", "required, >= 0")
			}
			if pt.TokensPerUnitHour <= 0 {
				bad(pp+".tokens_per_unit_hour", "must be > 0")
			}
		}
	}
	return errors.Join(errs...)
}

// periodMonths is the length of a commitment period in months; term is -1.
func periodMonths(p string) int {
	switch p {
	case "month":
		return 1
	case "quarter":
		return 3
	case "year":
		return 12
	case "term":
		return -1
	}
	return 0
}

// LoadPrices reads the files a pricing config names (paths already
// resolved), as the pipeline does, for the simulator's engines.
func LoadPrices(pc pricing.Config) (Prices, error) {
	if err := pc.Validate(); err != nil {
		return Prices{}, err
	}
	var p Prices
	for _, path := range pc.Catalogues {
		c, err := pricing.ReadCatalogue(path)
		if err != nil {
			return Prices{}, fmt.Errorf("catalogue: %w", err)
		}
		p.Catalogues, p.Names = append(p.Catalogues, c), append(p.Names, path)
	}
	if pc.Contracts != "" {
		c, err := pricing.ReadContracts(pc.Contracts)
		if err != nil {
			return Prices{}, fmt.Errorf("contracts: %w", err)
		}
		p.Contracts = c
	}
	if pc.FX != "" {
		f, err := pricing.ReadFX(pc.FX)
		if err != nil {
			return Prices{}, fmt.Errorf("fx: %w", err)
		}
		p.FX = f
	}
	return p, nil
}

// Override replaces the window and/or term with "FROM:TO" ranges ("" keeps
// the file's) and validates again.
func (f *File) Override(window, term string) error {
	for _, o := range []struct {
		v   string
		dst *Months
	}{{window, &f.Window}, {term, &f.Term}} {
		if o.v == "" {
			continue
		}
		from, to, ok := strings.Cut(o.v, ":")
		if !ok {
			return fmt.Errorf("%q is not FROM:TO", o.v)
		}
		*o.dst = Months{From: from, To: to}
	}
	return f.Validate()
}
