package chargeback

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/exact"
)

// AllocatedMethodId values (FOCUS 1.3 AllocatedMethodId: the documented
// method that produced an allocated charge). Shared rules use their own id.
const (
	MethodDirect       = "direct"       // the usage carried its cost centre
	MethodSpread       = "spread"       // unattributed spend spread by allocated spend
	MethodUnattributed = "unattributed" // kept visible, allocated to no centre
	MethodCacheSharing = "cache_sharing"
)

// Spend is priced usage summed per month and origin (what the pipeline
// attributed: cost centre if any, workflow, provider, model).
type Spend struct {
	Month      string // YYYY-MM
	CostCentre string // "" when attribution found none
	Workflow   string
	Provider   string
	Model      string
	Cost       decimal.Decimal // effective cost, Config.Currency
}

// Driver is how much a cost centre used a shared workflow in a month.
type Driver struct {
	Month, Workflow, CostCentre string
	Calls, Outcomes             int64
}

// CacheUse is one cost centre's use of one cached prefix in a month: the
// write premium it paid (cache-write cost minus the same tokens as plain
// input) and the read savings it got (cache_savings), in Config.Currency.
type CacheUse struct {
	Month, Prefix, CostCentre string
	ReadTokens                int64
	WritePremium, ReadSavings decimal.Decimal
}

// Allocation is one allocated charge.
type Allocation struct {
	Month      string
	CostCentre string
	Origin     string // workflow/provider/model of the origin charge, or the cache prefix
	Amount     decimal.Decimal
	// AllocatedMethodId and AllocatedMethodDetails as FOCUS 1.3 defines
	// them; Details is null (empty) for direct attribution, which is no split.
	AllocatedMethodID      string
	AllocatedMethodDetails string
}

// methodDetails is FOCUS's AllocatedMethodDetails object.
type methodDetails struct {
	Elements []detailElement `json:"Elements"`
}

type detailElement struct {
	AllocatedRatio json.Number `json:"AllocatedRatio"`
	UsageUnit      string      `json:"UsageUnit,omitempty"`
	UsageQuantity  *int64      `json:"UsageQuantity,omitempty"`
}

// ratioScale is the number of decimals of AllocatedRatio; the ratios of one
// origin charge are rounded together so they sum to exactly 1.
const ratioScale = 6

func scaleOf(d decimal.Decimal) int32 {
	s := -d.Exponent()
	if s < 2 {
		s = 2
	}
	return s
}

// split divides amount by weights exactly and rounds the parts at amount's
// own scale so that they add up to amount to the last digit.
func split(amount decimal.Decimal, weights []*big.Rat) []decimal.Decimal {
	total := exact.Add(weights...)
	parts := make([]*big.Rat, len(weights))
	for i, w := range weights {
		parts[i] = exact.Mul(exact.Rat(amount), exact.Quo(w, total))
	}
	return exact.RoundSum(parts, scaleOf(amount))
}

func details(ratios []decimal.Decimal, i int, unit string, qty *int64) string {
	b, _ := json.Marshal(methodDetails{Elements: []detailElement{{AllocatedRatio: json.Number(ratios[i].String()), UsageUnit: unit, UsageQuantity: qty}}})
	return string(b)
}

// Allocate applies the rules: shared workflows are split by their driver,
// spend with a cost centre is direct, the rest is kept visible or spread in
// proportion to each centre's direct and shared allocations that month.
// Cache sharing adds adjustments that move cost between centres and sum to
// zero. The allocations of a month add up exactly to its spend.
func Allocate(c *Config, spend []Spend, drivers []Driver, cache []CacheUse) ([]Allocation, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	rules := map[string]SharedRule{}
	for _, r := range c.Shared {
		rules[r.Workflow] = r
	}
	var out []Allocation
	var pending []Spend // unattributed, allocated last
	for _, s := range spend {
		origin := s.Workflow + "/" + s.Provider + "/" + s.Model
		if r, ok := rules[s.Workflow]; ok {
			var ds []Driver
			for _, d := range drivers {
				if d.Month == s.Month && d.Workflow == s.Workflow && driverOf(r, d) > 0 {
					ds = append(ds, d)
				}
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i].CostCentre < ds[j].CostCentre })
			if len(ds) == 0 {
				pending = append(pending, s) // a shared workflow nobody is recorded using: unattributed
				continue
			}
			ws := make([]*big.Rat, len(ds))
			for i, d := range ds {
				ws[i] = exact.Int(driverOf(r, d))
			}
			amounts := split(s.Cost, ws)
			ratios := ratiosOf(ws)
			for i, d := range ds {
				q := driverOf(r, d)
				out = append(out, Allocation{Month: s.Month, CostCentre: d.CostCentre, Origin: origin, Amount: amounts[i],
					AllocatedMethodID: r.ID, AllocatedMethodDetails: details(ratios, i, r.Driver, &q)})
			}
			continue
		}
		if s.CostCentre != "" {
			out = append(out, Allocation{Month: s.Month, CostCentre: s.CostCentre, Origin: origin, Amount: s.Cost, AllocatedMethodID: MethodDirect})
			continue
		}
		pending = append(pending, s)
	}
	// Unattributed: keep visible, or spread by what each centre got so far
	// that month (a month with nothing allocated keeps it visible).
	base := map[string]map[string]decimal.Decimal{}
	for _, a := range out {
		if base[a.Month] == nil {
			base[a.Month] = map[string]decimal.Decimal{}
		}
		base[a.Month][a.CostCentre] = base[a.Month][a.CostCentre].Add(a.Amount)
	}
	for _, s := range pending {
		origin := s.Workflow + "/" + s.Provider + "/" + s.Model
		centres := sortedKeys(base[s.Month])
		var ws []*big.Rat
		var keep []string
		for _, cc := range centres {
			if v := base[s.Month][cc]; v.IsPositive() {
				ws = append(ws, exact.Rat(v))
				keep = append(keep, cc)
			}
		}
		if c.Unattributed == UnattributedKeep || len(ws) == 0 {
			out = append(out, Allocation{Month: s.Month, CostCentre: UnattributedCentre, Origin: origin, Amount: s.Cost, AllocatedMethodID: MethodUnattributed})
			continue
		}
		amounts := split(s.Cost, ws)
		ratios := ratiosOf(ws)
		for i, cc := range keep {
			out = append(out, Allocation{Month: s.Month, CostCentre: cc, Origin: origin, Amount: amounts[i],
				AllocatedMethodID: MethodSpread, AllocatedMethodDetails: details(ratios, i, "spend", nil)})
		}
	}
	if *c.CacheSharing {
		adj, err := cacheAdjustments(cache)
		if err != nil {
			return nil, err
		}
		out = append(out, adj...)
	}
	return out, nil
}

func driverOf(r SharedRule, d Driver) int64 {
	if r.Driver == "outcomes" {
		return d.Outcomes
	}
	return d.Calls
}

func ratiosOf(ws []*big.Rat) []decimal.Decimal {
	total := exact.Add(ws...)
	rs := make([]*big.Rat, len(ws))
	for i, w := range ws {
		rs[i] = exact.Quo(w, total)
	}
	return exact.RoundSum(rs, ratioScale)
}

func sortedKeys(m map[string]decimal.Decimal) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// cacheAdjustments shares each (month, prefix)'s pooled net benefit N =
// Σ read savings − Σ write premiums among its readers by cache-read tokens:
// reader i should see N × r_i/R, it saw savings_i − premium_i, so its cost
// moves by (savings_i − premium_i) − N × r_i/R. The moves of one prefix sum
// to zero, so totals do not change.
func cacheAdjustments(uses []CacheUse) ([]Allocation, error) {
	type pk struct{ month, prefix string }
	groups := map[pk][]CacheUse{}
	var order []pk
	for _, u := range uses {
		k := pk{u.Month, u.Prefix}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], u)
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].month != order[j].month {
			return order[i].month < order[j].month
		}
		return order[i].prefix < order[j].prefix
	})
	var out []Allocation
	for _, k := range order {
		us := groups[k]
		sort.SliceStable(us, func(i, j int) bool { return us[i].CostCentre < us[j].CostCentre })
		var reads int64
		net := exact.Zero()
		scale := int32(15) // the pricing engine's cost scale: shares of rational size are exact to 10^-15

		for _, u := range us {
			if u.ReadTokens < 0 {
				return nil, fmt.Errorf("cache prefix %s: negative read tokens", k.prefix)
			}
			reads += u.ReadTokens
			net = exact.Add(net, exact.Rat(u.ReadSavings), new(big.Rat).Neg(exact.Rat(u.WritePremium)))
			for _, d := range []decimal.Decimal{u.ReadSavings, u.WritePremium} {
				if s := scaleOf(d); s > scale {
					scale = s
				}
			}
		}
		if reads == 0 {
			continue // written, never read: the writer keeps its premium
		}
		parts := make([]*big.Rat, len(us))
		ws := make([]*big.Rat, len(us))
		for i, u := range us {
			share := exact.Quo(exact.Int(u.ReadTokens), exact.Int(reads))
			ws[i] = exact.Int(u.ReadTokens)
			own := exact.Sub(exact.Rat(u.ReadSavings), exact.Rat(u.WritePremium))
			parts[i] = exact.Sub(own, exact.Mul(net, share))
		}
		amounts := exact.RoundSum(parts, scale) // sum to Round(0) = 0
		ratios := ratiosOf(ws)
		for i, u := range us {
			if amounts[i].IsZero() {
				continue
			}
			q := u.ReadTokens
			out = append(out, Allocation{Month: k.month, CostCentre: u.CostCentre, Origin: "cache:" + k.prefix, Amount: amounts[i],
				AllocatedMethodID: MethodCacheSharing, AllocatedMethodDetails: details(ratios, i, "cache_read_tokens", &q)})
		}
	}
	return out, nil
}
