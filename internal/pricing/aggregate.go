package pricing

import (
	"github.com/tokenmeter/tokenmeter/internal/event"
)

// PriceAggregate prices the summed usage of many requests of one
// tenant/provider/model/tier, as the processor would have priced them one by
// one: pricing is linear in every quantity, so the sum of the per-request
// costs equals the cost of the summed quantities at the same rates. The one
// non-linear rule, the long-context tier, is decided per request; a summed
// input says nothing about it, so the caller states it (longContext, from the
// rows' pricing_tier) instead of the threshold deciding. ev.EventTime picks
// the catalogue entry, contract and FX rate in force, as for Price.
//
// The contract simulator uses it to re-price a window of metered usage under
// offered terms with the same catalogue and arithmetic as the pipeline.
func (e *Engine) PriceAggregate(ev *event.UsageEvent, longContext bool, billingCurrency string, out *event.PricedUsageEvent) error {
	lm := longNo
	if longContext {
		lm = longYes
	}
	return e.price(ev, billingCurrency, out, lm)
}
