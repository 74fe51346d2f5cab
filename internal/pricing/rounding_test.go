package pricing

import (
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Issue 9: costs used to be computed to 15 places and truncated toward zero
// to 12 when stored. Now each stored amount is rounded once, half to even,
// from the exact value. Every expected value here is worked by hand; the
// truncated figure is noted where it differs.
func TestCostsRoundHalfEvenOnceAtStorageScale(t *testing.T) {
	rate := func(s string) Amount { return Amount{D: decimal.RequireFromString(s), Set: true} }
	cat := &CatalogueFile{Version: "r", Currency: "USD", Models: []ModelEntry{{
		Provider: "p", Model: "m", ValidFrom: "2026-01-01", Prices: map[string]Rates{"standard": {
			Input:  rate("0.1234567"), // per million: 1.234567e-7 per token (13 places)
			Output: rate("2.50"),
		}},
	}}}
	fx := &FXFile{Rates: []FXRate{
		{Date: "2026-01-01", Base: "USD", Quote: "HKD", Rate: rate("7.8000000006")},
		{Date: "2026-01-01", Base: "USD", Quote: "SGD", Rate: rate("7.8000000002")},
	}}
	e, err := New([]*CatalogueFile{cat}, nil, nil, fx)
	if err != nil {
		t.Fatal(err)
	}
	price := func(in, out int64, cur string) *event.PricedUsageEvent {
		ev := event.UsageEvent{Tenant: "t", Provider: "p", Model: "m", EventTime: at("2026-06-01T00:00:00Z"), InputTokens: in, OutputTokens: out}
		var p event.PricedUsageEvent
		p.UsageEvent = ev
		if err := e.Price(&ev, cur, &p); err != nil {
			t.Fatal(err)
		}
		return &p
	}
	// 5 input tokens × 1.234567e-7 = 6.172835e-7 = 0.0000006172835: a tie at
	// the 13th place after an odd 3 → up to 0.000000617284 (truncated: …283).
	p := price(5, 0, "")
	checkDec(t, "CostInput", p.CostInput, "0.000000617284")
	checkDec(t, "EffectiveCost", p.EffectiveCost, "0.000000617284")
	// 15 tokens: 1.8518505e-6 = 0.0000018518505, tie after an even 0 → stays 0.00000185185 (…0 kept).
	checkDec(t, "CostInput", price(15, 0, "").CostInput, "0.00000185185")
	// 7 tokens: 8.641969e-7 = 0.0000008641969 → 13th digit 9 → up to 0.000000864197 (truncated: …196).
	checkDec(t, "CostInput", price(7, 0, "").CostInput, "0.000000864197")

	// Billed amounts are rounded once from cost × rate, not from the rounded cost:
	// 1000 output tokens = 0.0025 USD; × 7.8000000006 = 0.0195000000015 → tie
	// after an odd 1 → 0.019500000002 HKD (truncated: 0.019500000001).
	h := price(0, 1000, "HKD")
	checkDec(t, "EffectiveCost", h.EffectiveCost, "0.0025")
	checkDec(t, "BilledEffectiveCost", h.BilledEffectiveCost, "0.019500000002")
	checkDec(t, "FXRate", h.FXRate, "7.8000000006")
	// × 7.8000000002 = 0.0195000000005 → tie after an even 0 → 0.0195 SGD.
	checkDec(t, "BilledEffectiveCost", price(0, 1000, "SGD").BilledEffectiveCost, "0.0195")
	// 5 input tokens in HKD: 6.172835e-7 × 7.8000000006 = 4.81481130003703701e-6
	// = 0.00000481481130003703701 → 12 places: 0.000004814811|30003… → down → 0.000004814811.
	checkDec(t, "BilledEffectiveCost", price(5, 0, "HKD").BilledEffectiveCost, "0.000004814811")
}
