package pricing

import (
	"fmt"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// PriceAggregate prices the summed usage of many calls in one step, for
// what-if analyses that re-price a period's real traffic on another model.
//
// ev holds the sums of the calls' counts (tokens and units) and what they
// share: tenant, provider, model, service tier and an instant whose catalogue
// entry, contract and FX rate apply to every one of them. long says on which
// side of the model's long-context threshold the calls lie; it is given, not
// derived from the summed input, because the tier belongs to each request.
// The caller groups calls so that this holds (e.g. by hour and by input
// tokens above or below the threshold it read from Lookup). Within one tier
// pricing is linear in each class, so the answer equals pricing each call
// and adding the results, up to the storage rounding of each call's cost.
func (e *Engine) PriceAggregate(ev *event.UsageEvent, long bool, billingCurrency string, out *event.PricedUsageEvent) error {
	if err := checkCounts(ev); err != nil {
		return err
	}
	// find picks the tier from the input count; a probe with a count on
	// the wanted side of the threshold selects it, the real sums are priced.
	probe := *ev
	probe.InputTokens = 0
	if long {
		p := e.cat.canonicalProvider(lower(ev.Provider))
		h := e.resolve(p, lower(ev.Model))
		if h == nil {
			return &Error{Reason: ReasonUnknownModel, Detail: fmt.Sprintf("no catalogue entry for provider %q model %q", ev.Provider, ev.Model)}
		}
		en := h.inForce(ev.EventTime.UnixMilli())
		if en == nil || en.longThreshold == 0 {
			return &Error{Reason: ReasonUnknownModel, Detail: fmt.Sprintf("%s/%s has no long-context tier at %s", h.provider, h.model, ev.EventTime.UTC().Format("2006-01-02T15:04:05Z"))}
		}
		probe.InputTokens = en.longThreshold + 1
	}
	m, perr := e.find(&probe)
	if perr != nil {
		return perr
	}
	return e.priceMatch(ev, &m, billingCurrency, out)
}
