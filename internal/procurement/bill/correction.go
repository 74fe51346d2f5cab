package bill

import (
	"sort"

	"github.com/shopspring/decimal"
)

// ChargeClassCorrection is FOCUS's ChargeClass for a charge that corrects
// one of a previously invoiced billing period.
const ChargeClassCorrection = "Correction"

// Charge is priced usage summed per day and key, as a closed period's
// figures were reported.
type Charge struct {
	Day, Tenant, Provider, Model, PricingTier string
	PriceID                                   string // catalogue row the figures were priced with
	ListCost, ContractedCost, EffectiveCost   decimal.Decimal
	ChargeClass                               string // "" for originals, Correction for corrections
}

type chargeKey struct{ day, tenant, provider, model, tier string }

// Corrections compares a closed period's original charges with the same
// usage re-priced and returns one correction row per key whose costs
// changed: the re-priced figure minus the original, ChargeClass Correction.
// The originals are left as they were, so the closed period's reported
// figures stay queryable and original + corrections = re-priced exactly.
func Corrections(original, repriced []Charge) []Charge {
	type pair struct {
		before, after Charge
		priceID       string
	}
	m := map[chargeKey]*pair{}
	var order []chargeKey
	at := func(c Charge) *pair {
		k := chargeKey{c.Day, c.Tenant, c.Provider, c.Model, c.PricingTier}
		p := m[k]
		if p == nil {
			p = &pair{}
			m[k] = p
			order = append(order, k)
		}
		return p
	}
	for _, c := range original {
		p := at(c)
		p.before.ListCost = p.before.ListCost.Add(c.ListCost)
		p.before.ContractedCost = p.before.ContractedCost.Add(c.ContractedCost)
		p.before.EffectiveCost = p.before.EffectiveCost.Add(c.EffectiveCost)
	}
	for _, c := range repriced {
		p := at(c)
		p.after.ListCost = p.after.ListCost.Add(c.ListCost)
		p.after.ContractedCost = p.after.ContractedCost.Add(c.ContractedCost)
		p.after.EffectiveCost = p.after.EffectiveCost.Add(c.EffectiveCost)
		p.priceID = c.PriceID
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.day != b.day {
			return a.day < b.day
		}
		if a.tenant != b.tenant {
			return a.tenant < b.tenant
		}
		if a.provider != b.provider {
			return a.provider < b.provider
		}
		if a.model != b.model {
			return a.model < b.model
		}
		return a.tier < b.tier
	})
	var out []Charge
	for _, k := range order {
		p := m[k]
		c := Charge{Day: k.day, Tenant: k.tenant, Provider: k.provider, Model: k.model, PricingTier: k.tier, PriceID: p.priceID,
			ListCost:       p.after.ListCost.Sub(p.before.ListCost),
			ContractedCost: p.after.ContractedCost.Sub(p.before.ContractedCost),
			EffectiveCost:  p.after.EffectiveCost.Sub(p.before.EffectiveCost),
			ChargeClass:    ChargeClassCorrection}
		if c.ListCost.IsZero() && c.ContractedCost.IsZero() && c.EffectiveCost.IsZero() {
			continue
		}
		out = append(out, c)
	}
	return out
}
