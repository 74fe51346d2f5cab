package levers

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// UsageGroup is the summed usage of calls that can be re-priced together on a
// candidate model: one tenant, one service tier, one hour (prices and FX in
// force at its start apply to all of them) and one side of the candidate's
// long-context threshold.
type UsageGroup struct {
	At          time.Time
	Tenant      string
	ServiceTier string
	Long        bool // every call's input is above the candidate's long-context threshold
	Calls       int64

	InputTokens        int64 // total, including cache reads and writes
	CacheReadTokens    int64
	CacheWriteTokens   int64 // including 1-hour writes
	CacheWrite1hTokens int64
	OutputTokens       int64 // total, including reasoning
	ReasoningTokens    int64
	Images             int64
	AudioSeconds       int64
	Requests           int64
	ToolCalls          int64
	WebSearches        int64

	// Actual is what these calls cost as priced, in BillingCurrency.
	Actual          decimal.Decimal
	BillingCurrency string
}

// CacheAssumption says how the candidate would have used the prompt cache.
// It is a stated assumption of every what-if, never a silent one.
type CacheAssumption string

const (
	// CacheSame keeps the calls' cache reads and writes as they were
	// (the candidate caches the same prefixes). A candidate without cache
	// prices bills them at its input rate, as its catalogue entry says.
	CacheSame CacheAssumption = "same"
	// CacheNone bills all input as uncached on the candidate.
	CacheNone CacheAssumption = "none"
)

// Validate checks the assumption's name.
func (c CacheAssumption) Validate() error {
	switch c {
	case CacheSame, CacheNone:
		return nil
	}
	return fmt.Errorf("cache assumption %q is not one of same, none", c)
}

// Candidate is a model to re-price on.
type Candidate struct{ Provider, Model string }

func (c Candidate) String() string { return c.Provider + "/" + c.Model }

// WhatIf is a period's calls re-priced on a candidate.
type WhatIf struct {
	Candidate Candidate
	Cache     CacheAssumption
	Calls     int64
	Currency  string
	Actual    decimal.Decimal // what the calls cost
	Repriced  decimal.Decimal // what they would have cost on the candidate
	// Unpriced counts calls the candidate has no price for (a service tier it
	// does not offer, a long-context tier it lacks); they are left out of
	// Actual and Repriced alike, so the saving compares like with like.
	Unpriced int64
	Reasons  []string
}

// Saving is Actual - Repriced (positive: the candidate is cheaper).
func (w WhatIf) Saving() decimal.Decimal { return w.Actual.Sub(w.Repriced) }

// Reprice prices groups on the candidate with the processor's engine:
// catalogue prices in force at each group's hour, the tenant's contracts on
// the candidate, and the tenant's billing currency at that day's FX rate.
func Reprice(e *pricing.Engine, groups []UsageGroup, c Candidate, cache CacheAssumption) (WhatIf, error) {
	if err := cache.Validate(); err != nil {
		return WhatIf{}, err
	}
	w := WhatIf{Candidate: c, Cache: cache, Actual: decimal.Zero, Repriced: decimal.Zero}
	reasons := map[string]bool{}
	for _, g := range groups {
		if w.Currency == "" {
			w.Currency = g.BillingCurrency
		} else if g.BillingCurrency != w.Currency {
			return WhatIf{}, fmt.Errorf("groups in %s and %s: re-price one billing currency at a time", w.Currency, g.BillingCurrency)
		}
		ev := event.UsageEvent{
			EventID: "what-if", EventTime: g.At, Tenant: g.Tenant, Provider: c.Provider, Model: c.Model, ServiceTier: g.ServiceTier,
			InputTokens: g.InputTokens, CacheReadInputTokens: g.CacheReadTokens, CacheWriteInputTokens: g.CacheWriteTokens,
			CacheWrite1hInputTokens: g.CacheWrite1hTokens, OutputTokens: g.OutputTokens, ReasoningTokens: g.ReasoningTokens,
		}
		ev.Units.Images, ev.Units.AudioSeconds, ev.Units.Requests = g.Images, g.AudioSeconds, g.Requests
		ev.Units.ToolCalls, ev.Units.WebSearches = g.ToolCalls, g.WebSearches
		if cache == CacheNone {
			ev.CacheReadInputTokens, ev.CacheWriteInputTokens, ev.CacheWrite1hInputTokens = 0, 0, 0
		}
		out := event.PricedUsageEvent{UsageEvent: ev}
		err := e.PriceAggregate(&ev, g.Long, g.BillingCurrency, &out)
		var perr *pricing.Error
		if errors.As(err, &perr) {
			w.Unpriced += g.Calls
			reasons[perr.Detail] = true
			continue
		}
		if err != nil {
			return WhatIf{}, err
		}
		w.Calls += g.Calls
		w.Actual = w.Actual.Add(g.Actual)
		w.Repriced = w.Repriced.Add(out.BilledEffectiveCost.Decimal())
	}
	for r := range reasons {
		w.Reasons = append(w.Reasons, r)
	}
	sort.Strings(w.Reasons)
	return w, nil
}
