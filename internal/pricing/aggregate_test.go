package pricing

import (
	"errors"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

func TestPriceAggregateUsesTheGivenTierNotTheSum(t *testing.T) {
	e := testEngine(t)
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	// Three calls of 200,000 input tokens each (not above the 200,000
	// threshold) and 1,000 output each. Standard rates: 3/M input, 15/M output.
	// 600,000 x 3/M = 1.80; 3,000 x 15/M = 0.045; total 1.845. Pricing the sum
	// as one call would wrongly apply the long-context rates (3.6675).
	short := event.UsageEvent{EventTime: at, Tenant: "beta", Provider: "anthropic", Model: "claude-sonnet-4-5",
		InputTokens: 600000, OutputTokens: 3000}
	var out event.PricedUsageEvent
	out.UsageEvent = short
	if err := e.PriceAggregate(&short, false, "", &out); err != nil {
		t.Fatal(err)
	}
	if got := out.EffectiveCost.String(); got != "1.845" {
		t.Fatalf("short calls: effective cost %s, want 1.845", got)
	}
	if out.PricingTier != "standard" {
		t.Fatalf("tier %s", out.PricingTier)
	}

	// Two long calls: 250,000 input (50,000 cache reads) + 1,000 output and
	// 300,000 input + 2,000 output. Long rates: 6/M input, 0.60/M cache read,
	// 22.50/M output: 500,000 x 6/M = 3.00; 50,000 x 0.60/M = 0.03;
	// 3,000 x 22.50/M = 0.0675; total 3.0975.
	long := event.UsageEvent{EventTime: at, Tenant: "beta", Provider: "anthropic", Model: "claude-sonnet-4-5",
		InputTokens: 550000, CacheReadInputTokens: 50000, OutputTokens: 3000}
	out = event.PricedUsageEvent{UsageEvent: long}
	if err := e.PriceAggregate(&long, true, "", &out); err != nil {
		t.Fatal(err)
	}
	if got := out.EffectiveCost.String(); got != "3.0975" {
		t.Fatalf("long calls: effective cost %s, want 3.0975", got)
	}
	if out.PricingTier != "standard"+LongContextSuffix {
		t.Fatalf("tier %s", out.PricingTier)
	}
}

func TestPriceAggregateRefusesLongOnAModelWithoutTheTier(t *testing.T) {
	e := testEngine(t)
	ev := event.UsageEvent{EventTime: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), Tenant: "beta",
		Provider: "anthropic", Model: "claude-haiku-4-5", InputTokens: 10, OutputTokens: 1}
	out := event.PricedUsageEvent{UsageEvent: ev}
	err := e.PriceAggregate(&ev, true, "", &out)
	var perr *Error
	if !errors.As(err, &perr) || perr.Reason != ReasonUnknownModel {
		t.Fatalf("err %v", err)
	}
}
