package bill

import "testing"

func TestCorrectionsKeepOriginals(t *testing.T) {
	orig := []Charge{
		{Day: "2026-10-01", Tenant: "acme", Provider: "openai", Model: "gpt-4o", PricingTier: "standard", PriceID: "old",
			ListCost: d("10.00"), ContractedCost: d("9.00"), EffectiveCost: d("9.00")},
		{Day: "2026-10-01", Tenant: "acme", Provider: "openai", Model: "gpt-4o-mini", PricingTier: "standard", PriceID: "m",
			ListCost: d("1.00"), ContractedCost: d("1.00"), EffectiveCost: d("1.00")},
	}
	// The catalogue was wrong by 10 % on gpt-4o: re-priced 11.00 list, 9.90 contracted.
	rep := []Charge{
		{Day: "2026-10-01", Tenant: "acme", Provider: "openai", Model: "gpt-4o", PricingTier: "standard", PriceID: "new",
			ListCost: d("11.00"), ContractedCost: d("9.90"), EffectiveCost: d("9.90")},
		orig[1],
	}
	got := Corrections(orig, rep)
	if len(got) != 1 {
		t.Fatalf("corrections %+v, want one (gpt-4o-mini did not change)", got)
	}
	c := got[0]
	if c.ChargeClass != "Correction" || c.Model != "gpt-4o" || c.PriceID != "new" ||
		!c.ListCost.Equal(d("1")) || !c.ContractedCost.Equal(d("0.9")) || !c.EffectiveCost.Equal(d("0.9")) {
		t.Errorf("correction = %+v, want +1.00 list, +0.90 contracted/effective", c)
	}
	if !orig[0].EffectiveCost.Equal(d("9.00")) {
		t.Error("original rewritten")
	}
	if !orig[0].EffectiveCost.Add(c.EffectiveCost).Equal(rep[0].EffectiveCost) {
		t.Error("original + correction != re-priced")
	}
}
