package event

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/money"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func validUsage() UsageEvent {
	return UsageEvent{
		EventID: "e1", EventTime: now.Add(-time.Minute), Tenant: "acme",
		Provider: "openai", Model: "gpt-4o",
		InputTokens: 1000, CacheReadInputTokens: 600, CacheWriteInputTokens: 100,
		OutputTokens: 500, ReasoningTokens: 200,
	}
}

func TestUsageValidateAccepts(t *testing.T) {
	e := validUsage()
	if err := e.Validate(now); err != nil {
		t.Fatalf("valid event rejected: %v", err)
	}
	// Subsets exactly equal to the total are consistent: all input was cache reads.
	e.CacheReadInputTokens, e.CacheWriteInputTokens = 1000, 0
	e.ReasoningTokens = 500
	if err := e.Validate(now); err != nil {
		t.Fatalf("subsets equal to totals rejected: %v", err)
	}
}

func TestUsageValidateRejects(t *testing.T) {
	cases := []struct {
		name  string
		mut   func(*UsageEvent)
		field string
	}{
		{"no id", func(e *UsageEvent) { e.EventID = "" }, "event_id"},
		{"no time", func(e *UsageEvent) { e.EventTime = time.Time{} }, "event_time"},
		{"far future", func(e *UsageEvent) { e.EventTime = now.Add(48 * time.Hour) }, "event_time"},
		{"no tenant", func(e *UsageEvent) { e.Tenant = "" }, "tenant"},
		{"no model", func(e *UsageEvent) { e.Model = "" }, "model"},
		{"bad tier", func(e *UsageEvent) { e.ServiceTier = "gold" }, "service_tier"},
		{"negative output", func(e *UsageEvent) { e.OutputTokens = -1; e.ReasoningTokens = 0 }, "output_tokens"},
		// 600 reads + 500 writes = 1100 > 1000 input: never "fixed", always rejected.
		{"cache subsets exceed input", func(e *UsageEvent) { e.CacheWriteInputTokens = 500 }, "cache_read_input_tokens"},
		{"reasoning exceeds output", func(e *UsageEvent) { e.ReasoningTokens = 501 }, "reasoning_tokens"},
		{"1h writes exceed writes", func(e *UsageEvent) { e.CacheWrite1hInputTokens = 101 }, "cache_write_1h_input_tokens"},
		{"bad reported currency", func(e *UsageEvent) {
			e.ReportedCost = &Money{Amount: decimal.RequireFromString("0.01"), Currency: "usd"}
		}, "reported_cost.currency"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := validUsage()
			c.mut(&e)
			err := e.Validate(now)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want ValidationError, got %v", err)
			}
			found := false
			for _, p := range ve.Problems {
				if p.Field == c.field {
					found = true
				}
			}
			if !found {
				t.Fatalf("want a problem on %s, got %v", c.field, ve.Problems)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	var e UsageEvent
	err := e.Validate(now)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatal(err)
	}
	// event_id, event_time, tenant, provider, model: five missing fields.
	if len(ve.Problems) != 5 {
		t.Fatalf("want 5 problems, got %d: %v", len(ve.Problems), ve.Problems)
	}
}

func TestOutcomeValidate(t *testing.T) {
	o := OutcomeEvent{OutcomeID: "o1", EventTime: now, Tenant: "acme", Workflow: "support", OutcomeType: "ticket_resolved", Count: 1,
		Value: &Money{Amount: decimal.RequireFromString("120.50"), Currency: "HKD"}}
	if err := o.Validate(now); err != nil {
		t.Fatal(err)
	}
	o.Count = 0
	if err := o.Validate(now); err == nil || !strings.Contains(err.Error(), "count") {
		t.Fatalf("count 0 accepted: %v", err)
	}
}

func TestMoneyStaysExactInJSON(t *testing.T) {
	p := PricedUsageEvent{EffectiveCost: money.FromCoef(1)} // 10^-12
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"effective_cost":"0.000000000001"`) {
		t.Fatalf("decimal not encoded as exact string: %s", b)
	}
	var back PricedUsageEvent
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.EffectiveCost != p.EffectiveCost {
		t.Fatalf("round trip changed %s to %s", p.EffectiveCost, back.EffectiveCost)
	}
}

func TestRecordKey(t *testing.T) {
	e := UsageEvent{Tenant: "acme", Workflow: "legal-research"}
	if got := string(e.Key()); got != "acme/legal-research" {
		t.Fatalf("key %q", got)
	}
}

// Issue 17 item 4: 2^63-1 output tokens were accepted and priced at about
// 6e14 HKD, and cache reads plus writes overflowed to a negative sum that
// passed the "subset of input" check.
func TestValidateBoundsCountsWithoutOverflow(t *testing.T) {
	base := UsageEvent{EventID: "e", EventTime: now, Tenant: "acme", Provider: "openai", Model: "m", InputTokens: 10, OutputTokens: 1}
	fields := func(err error) map[string]string {
		out := map[string]string{}
		var ve *ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				out[p.Field] = p.Limit
			}
		}
		return out
	}
	ev := base
	ev.OutputTokens = math.MaxInt64
	if got := fields(ev.Validate(now)); got["output_tokens"] != "max_tokens" || len(got) != 1 {
		t.Errorf("max int64 output: %v", got)
	}
	ev = base
	ev.CacheReadInputTokens, ev.CacheWriteInputTokens = math.MaxInt64, math.MaxInt64 // sum wraps to -2
	got := fields(ev.Validate(now))
	if _, ok := got["cache_read_input_tokens"]; !ok || got["cache_write_input_tokens"] != "max_tokens" {
		t.Errorf("wrapping cache sum: %v", got)
	}
	// Within a raised limit, the sum check itself must not wrap either.
	lim := limits.Limits{MaxTokens: 1e15}
	ev = base
	ev.InputTokens, ev.CacheReadInputTokens, ev.CacheWriteInputTokens = 1e15, 1e15, 1e15
	if err := ev.ValidateWithin(now, lim); err == nil {
		t.Error("cache reads + writes (2e15) > input (1e15) accepted")
	}
	ev = base
	ev.InputTokens, ev.OutputTokens = 1_000_000_000, 1_000_000_000 // exactly the default maximum
	if err := ev.Validate(now); err != nil {
		t.Errorf("at the maximum: %v", err)
	}
}
