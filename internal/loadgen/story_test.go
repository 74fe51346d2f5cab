package loadgen

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

func story(t *testing.T, from, to time.Time) []*Request {
	t.Helper()
	s := NewStory(PlannerConfig{Seed: 1, RunID: "story", Tenant: "acme", Environment: "test", Base: from}, to, 1)
	var out []*Request
	for r := s.Next(); r != nil; r = s.Next() {
		out = append(out, r)
	}
	return out
}

func TestStoryIsDeterministicAndInTime(t *testing.T) {
	from, to := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 9, 8, 0, 0, 0, 0, time.UTC)
	a, _ := json.Marshal(story(t, from, to))
	b, _ := json.Marshal(story(t, from, to))
	if string(a) != string(b) {
		t.Fatal("same seed gave a different history")
	}
	rs := story(t, from, to)
	for i, r := range rs {
		if i > 0 && r.At.Before(rs[i-1].At) {
			t.Fatal("requests out of time order")
		}
		for _, c := range r.Calls {
			if c.Event.EventTime.Before(from.Add(-time.Hour)) || !c.Event.EventTime.Before(to) {
				t.Fatalf("call at %s outside the history", c.Event.EventTime)
			}
			if err := c.Event.Validate(time.Time{}); err != nil {
				t.Fatalf("invalid story event: %v", err)
			}
		}
	}
}

// The story's figures, priced with the demo pipeline's own catalogue,
// contracts and FX: what the demo and docs/loadgen.md promise.
func TestStoryTellsTheSeedsStory(t *testing.T) {
	eng, err := pricing.Load(pricing.Config{Catalogues: []string{"../../pipelines/prices/catalogue.yaml"},
		Contracts: "../../pipelines/prices/contracts.yaml", FX: "../../pipelines/prices/fx.csv"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	from, to := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	type agg struct {
		cost           decimal.Decimal
		requests, outc int
		value          decimal.Decimal
		tokens         []int64
	}
	byWf := map[string]*agg{}
	month := map[string]map[time.Month]*agg{WorkflowSupport: {}}
	var turnTokens, turns int64
	for _, r := range story(t, from, to) {
		a := byWf[r.Workflow]
		if a == nil {
			a = &agg{}
			byWf[r.Workflow] = a
		}
		var tok int64
		cost := decimal.Zero
		for i := range r.Calls {
			e := &r.Calls[i].Event
			var out event.PricedUsageEvent
			out.UsageEvent = *e
			if err := eng.Price(e, "HKD", &out); err != nil {
				t.Fatal(err)
			}
			cost = cost.Add(out.BilledEffectiveCost.Decimal())
			tok += e.InputTokens + e.OutputTokens
			if r.Workflow == WorkflowSupport {
				turnTokens += e.InputTokens + e.OutputTokens
				turns++
			}
		}
		a.cost, a.requests, a.tokens = a.cost.Add(cost), a.requests+1, append(a.tokens, tok)
		if r.Outcome != nil {
			a.outc++
			a.value = a.value.Add(r.Outcome.Value.Amount)
		}
		if r.Workflow == WorkflowSupport {
			m := month[WorkflowSupport][r.At.Month()]
			if m == nil {
				m = &agg{}
				month[WorkflowSupport][r.At.Month()] = m
			}
			m.cost = m.cost.Add(cost)
			if r.Outcome != nil {
				m.outc++
			}
		}
	}
	perOutcome := func(a *agg) float64 { f, _ := a.cost.Div(decimal.NewFromInt(int64(a.outc))).Float64(); return f }
	if c := perOutcome(byWf[WorkflowSupport]); c < 0.30 || c > 0.50 {
		t.Errorf("support: HKD %.3f per resolved ticket, want about 0.40", c)
	}
	if v, _ := byWf[WorkflowSupport].value.Div(decimal.NewFromInt(int64(byWf[WorkflowSupport].outc))).Float64(); v != 12 {
		t.Errorf("support value per ticket %v, want 12", v)
	}
	legal := byWf[WorkflowLegal]
	if c, _ := legal.cost.Div(decimal.NewFromInt(int64(legal.requests))).Float64(); c < 70 || c > 110 {
		t.Errorf("legal: HKD %.2f per query, want about 90", c)
	}
	if legal.value.GreaterThanOrEqual(legal.cost) {
		t.Error("legal research should be worth less than it costs")
	}
	sep, oct := month[WorkflowSupport][time.September], month[WorkflowSupport][time.October]
	if perOutcome(oct) >= perOutcome(sep) {
		t.Errorf("support per ticket should fall from September (%.3f) to October (%.3f)", perOutcome(sep), perOutcome(oct))
	}
	// Agentic fan-out: tokens per task against a support turn's.
	turn := float64(turnTokens) / float64(turns)
	lo, hi := 1e9, 0.0
	for _, tk := range byWf[WorkflowAgent].tokens {
		x := float64(tk) / turn
		lo, hi = min(lo, x), max(hi, x)
	}
	// Per task 5-30 steps: the shortest tasks about 5x, the longest about 30x
	// (with the draws' spread, 4x..40x).
	if lo < 4 || lo > 7 || hi < 25 || hi > 40 {
		t.Errorf("agent tasks are %.1fx..%.1fx a chat turn's tokens, want about 5-30x", lo, hi)
	}
	t.Logf("support %.3f HKD/ticket; legal %.2f HKD/query; agent %.1fx..%.1fx; requests %d/%d/%d/%d",
		perOutcome(byWf[WorkflowSupport]), func() float64 { f, _ := legal.cost.Div(decimal.NewFromInt(int64(legal.requests))).Float64(); return f }(), lo, hi,
		byWf[WorkflowSupport].requests, legal.requests, byWf[WorkflowAgent].requests, byWf[WorkflowMarketing].requests)
}

// The history holds one example for each lever analysis (docs/levers.md):
// a prompt version on a cheaper model whose cost per call falls while its
// cost per outcome rises, cache writes never read back, long-context calls,
// and input-heavy calls with no caching.
func TestStoryHasAnExampleForEachLever(t *testing.T) {
	eng, err := pricing.Load(pricing.Config{Catalogues: []string{"../../pipelines/prices/catalogue.yaml"},
		Contracts: "../../pipelines/prices/contracts.yaml", FX: "../../pipelines/prices/fx.csv"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	from, to := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	type v struct {
		calls, outcomes int64
		cost            decimal.Decimal
	}
	ver := map[string]*v{"v2": {}, "v3": {}}
	var longCalls, writerWrites, marketingCacheReads int64
	for _, r := range story(t, from, to) {
		for i := range r.Calls {
			e := &r.Calls[i].Event
			if r.Workflow == WorkflowMarketing {
				out := event.PricedUsageEvent{UsageEvent: *e}
				if err := eng.Price(e, "HKD", &out); err != nil {
					t.Fatal(err)
				}
				x := ver[e.PromptVersion]
				x.calls++
				x.cost = x.cost.Add(out.BilledEffectiveCost.Decimal())
				marketingCacheReads += e.CacheReadInputTokens
				if e.PromptVersion == "v3" && (e.Model != ModelGPT54Nano.Name || e.EventTime.Before(time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC))) {
					t.Fatalf("v3 call %s on %s", e.EventTime, e.Model)
				}
			}
			if e.AgentName == "writer" && e.CacheWrite1hInputTokens > 0 {
				writerWrites++
			}
			if e.Model == ModelSonnet45.Name && e.InputTokens > 200000 {
				longCalls++
			}
		}
		if r.Workflow == WorkflowMarketing && r.Outcome != nil {
			ver[r.Calls[0].Event.PromptVersion].outcomes++
		}
	}
	per := func(d decimal.Decimal, n int64) decimal.Decimal { return d.Div(decimal.NewFromInt(n)) }
	v2, v3 := ver["v2"], ver["v3"]
	if v2.calls == 0 || v3.calls == 0 || v3.outcomes == 0 {
		t.Fatalf("versions: %+v %+v", v2, v3)
	}
	if !per(v3.cost, v3.calls).LessThan(per(v2.cost, v2.calls)) || !per(v3.cost, v3.outcomes).GreaterThan(per(v2.cost, v2.outcomes).Mul(decimal.RequireFromString("1.1"))) {
		t.Errorf("v2 %s/call %s/draft; v3 %s/call %s/draft: want v3 cheaper per call and >10%% dearer per accepted draft",
			per(v2.cost, v2.calls).StringFixed(5), per(v2.cost, v2.outcomes).StringFixed(5), per(v3.cost, v3.calls).StringFixed(5), per(v3.cost, v3.outcomes).StringFixed(5))
	}
	if longCalls == 0 || writerWrites == 0 || marketingCacheReads != 0 {
		t.Errorf("long-context calls %d, writer cache writes %d, marketing cache reads %d", longCalls, writerWrites, marketingCacheReads)
	}
}
