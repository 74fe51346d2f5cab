package pricing

import (
	"fmt"
	"sort"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// EstimateRequest describes a planned model call, for budget checks before
// the call is made ("may this workflow spend this much?").
type EstimateRequest struct {
	Tenant      string
	Provider    string
	Model       string
	ServiceTier string    // "" = standard
	At          time.Time // price in force at this instant; zero = Now()
	// Estimated token counts, with the same subset rules as UsageEvent.
	InputTokens          int64
	CacheReadInputTokens int64
	OutputTokens         int64
	ReasoningTokens      int64
	// BillingCurrency of the answer's Billed* fields ("" = pricing currency).
	BillingCurrency string
}

// Estimate prices a planned call exactly as Price would price the same usage:
// same catalogue entry, tier, contract and FX. The answer's EffectiveCost
// (pricing currency) and BilledEffectiveCost (billing currency) are what a
// budget check compares. Errors are *Error as for Price.
func (e *Engine) Estimate(req EstimateRequest) (*event.PricedUsageEvent, error) {
	at := req.At
	if at.IsZero() {
		at = Now()
	}
	out := &event.PricedUsageEvent{UsageEvent: event.UsageEvent{
		EventID: "estimate", EventTime: at.UTC(), Tenant: req.Tenant,
		Provider: req.Provider, Model: req.Model, ServiceTier: req.ServiceTier,
		InputTokens: req.InputTokens, CacheReadInputTokens: req.CacheReadInputTokens,
		OutputTokens: req.OutputTokens, ReasoningTokens: req.ReasoningTokens,
	}}
	if err := e.Price(&out.UsageEvent, req.BillingCurrency, out); err != nil {
		return nil, err
	}
	return out, nil
}

// PriceInfo describes the catalogue entry that applies to a provider/model at
// an instant (for `tokenmeter prices show`).
type PriceInfo struct {
	Provider, Model      string
	ValidFrom, ValidTo   string // ValidTo "" = open-ended
	LongContextThreshold int64
	Currency             string
	Version              string
	Source               string
	Tiers                map[string]Rates // as written in the catalogue
	PriceIDs             []string
	PriceIDByTier        map[string]string // tier -> price id
	From, To             time.Time         // ValidFrom and ValidTo as instants; To zero = open-ended
}

// Lookup resolves provider/model (aliases and patterns included) to the entry
// in force at at. Errors are *Error{unknown_model}.
func (e *Engine) Lookup(provider, model string, at time.Time) (*PriceInfo, error) {
	p := e.cat.canonicalProvider(lower(provider))
	h := e.resolve(p, lower(model))
	if h == nil {
		return nil, &Error{Reason: ReasonUnknownModel, Detail: fmt.Sprintf("no catalogue entry for provider %q model %q", provider, model)}
	}
	en := h.inForce(at.UnixMilli())
	if en == nil {
		return nil, &Error{Reason: ReasonUnknownModel, Detail: fmt.Sprintf("no price for %s/%s in force at %s", h.provider, h.model, at.UTC().Format(time.RFC3339))}
	}
	return en.info(), nil
}

// info describes the entry.
func (en *entry) info() *PriceInfo {
	info := &PriceInfo{
		Provider: en.provider, Model: en.model, ValidFrom: formatInstant(en.from), LongContextThreshold: en.longThreshold,
		Currency: en.currency, Version: en.version, Source: en.sourceURL, Tiers: map[string]Rates{}, PriceIDByTier: map[string]string{},
	}
	info.From = time.UnixMilli(en.from).UTC()
	if en.to != maxTo {
		info.ValidTo = formatInstant(en.to)
		info.To = time.UnixMilli(en.to).UTC()
	}
	for n, t := range en.tiers {
		info.Tiers[n] = t.rates
		info.PriceIDs = append(info.PriceIDs, t.priceID)
		info.PriceIDByTier[n] = t.priceID
	}
	sort.Strings(info.PriceIDs)
	return info
}

// History lists every effective-dated entry of every model, past, current
// and future, ordered by provider, model and valid_from: what was in force
// for any event, backfilled ones included (the price_catalogue table).
func (e *Engine) History() []*PriceInfo {
	var out []*PriceInfo
	for _, h := range e.cat.histories {
		for _, en := range h.entries {
			out = append(out, en.info())
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.Model < b.Model
	})
	return out
}

// Models lists every canonical provider/model in the catalogue, sorted.
func (e *Engine) Models() [][2]string {
	var out [][2]string
	for _, h := range e.cat.histories {
		out = append(out, [2]string{h.provider, h.model})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return out
}
