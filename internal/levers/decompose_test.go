package levers

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/exact"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// The expected effects are worked by hand in the comments; see Decompose for
// the model and the order (price, routing, prompt, caching, volume).
func TestDecomposeByHand(t *testing.T) {
	// Before: 10 outcomes, 100 calls on A at 1000 input / 100 output tokens
	// per call, input 2.50/M, output 10/M: 0.25 + 0.10 = 0.35; CPO 0.035.
	before := PeriodUsage{Outcomes: dec("10"), Models: []ModelUsage{{
		Provider: "openai", Model: "A", Calls: 100, InputTokens: 100000, OutputTokens: 10000,
		CostUncachedInput: dec("0.25"), CostOutput: dec("0.10"),
	}}}
	// After: 8 outcomes. A: 50 calls, 1500 input per call (75,000, of which
	// 20,000 cache reads at 1.25/M), 100 output: 55,000 x 2.5/M = 0.1375,
	// 0.025, 0.05 -> 0.2125. B (new, cheap): 50 calls, 2000 input and 100
	// output per call at 0.15/M and 0.60/M: 0.015 + 0.003 = 0.018.
	// Total 0.2305 / 8 = 0.0288125.
	after := PeriodUsage{Outcomes: dec("8"), Models: []ModelUsage{{
		Provider: "openai", Model: "A", Calls: 50, InputTokens: 75000, CacheReadTokens: 20000, OutputTokens: 5000,
		CostUncachedInput: dec("0.1375"), CostCacheRead: dec("0.025"), CostOutput: dec("0.05"),
	}, {
		Provider: "openai", Model: "B", Calls: 50, InputTokens: 100000, OutputTokens: 5000,
		CostUncachedInput: dec("0.015"), CostOutput: dec("0.003"),
	}}}
	d, err := Decompose(before, after)
	if err != nil {
		t.Fatal(err)
	}
	// price: no rate changed                                   -> 0
	// routing: 10 x (0.5 x 0.0035 + 0.5 x 0.00036) = 0.0193    -> -0.0157
	// prompt: A at 1500 in: 0.00475/call; 10 x (0.002375 + 0.00018) = 0.02555 -> +0.00625
	// caching: A r = 4/15: 0.00425/call; 10 x (0.002125 + 0.00018) = 0.02305  -> -0.0025
	// volume: 12.5 calls/outcome: 12.5 x 0.002305 = 0.0288125 -> +0.0057625
	want := map[string]string{LeverPrice: "0", LeverRouting: "-0.0157", LeverPrompt: "0.00625", LeverCaching: "-0.0025", LeverVolume: "0.0057625"}
	for l, w := range want {
		if got := exact.Round(d.Effects[l], 12); !got.Equal(dec(w)) {
			t.Errorf("%s: %s, want %s", l, got, w)
		}
	}
	if got := exact.Round(d.Before, 12); !got.Equal(dec("0.035")) {
		t.Errorf("before %s", got)
	}
	if got := exact.Round(d.After, 12); !got.Equal(dec("0.0288125")) {
		t.Errorf("after %s", got)
	}
	sum := exact.Zero()
	for _, l := range Levers {
		sum = exact.Add(sum, d.Effects[l])
	}
	if sum.Cmp(d.Total()) != 0 {
		t.Fatalf("effects sum to %s, total %s", sum.FloatString(15), d.Total().FloatString(15))
	}
}

func TestDecomposePriceAndRoundedPartsAddUp(t *testing.T) {
	// Same traffic, a price cut of one third on output: 3 calls per outcome.
	// Before: 3 calls, 30 output tokens at 1/token... (round numbers so
	// thirds appear): output cost 1 -> 2/3 per period.
	before := PeriodUsage{Outcomes: dec("3"), Models: []ModelUsage{{Provider: "p", Model: "m", Calls: 3, InputTokens: 3, OutputTokens: 3,
		CostUncachedInput: dec("1"), CostOutput: dec("1")}}}
	after := PeriodUsage{Outcomes: dec("3"), Models: []ModelUsage{{Provider: "p", Model: "m", Calls: 3, InputTokens: 3, OutputTokens: 3,
		CostUncachedInput: dec("1"), CostOutput: dec("0.5")}}}
	d, err := Decompose(before, after)
	if err != nil {
		t.Fatal(err)
	}
	// CPO 2/3 -> 1.5/3 = 0.5: the whole change (-1/6) is price.
	b, a, eff := d.Rounded(2)
	if b.String() != "0.67" || a.String() != "0.5" {
		t.Fatalf("before %s after %s", b, a)
	}
	total := decimal.Zero
	for _, e := range eff {
		total = total.Add(e)
	}
	if !total.Equal(a.Sub(b)) {
		t.Fatalf("rounded effects %v sum to %s, shown change %s", eff, total, a.Sub(b))
	}
	if !eff[0].Equal(dec("-0.17")) {
		t.Fatalf("price effect %s", eff[0])
	}
}

func TestDecomposeRefusesWithoutOutcomes(t *testing.T) {
	p := PeriodUsage{Outcomes: decimal.Zero, Models: []ModelUsage{{Provider: "p", Model: "m", Calls: 1}}}
	if _, err := Decompose(p, p); !errors.Is(err, ErrNoOutcomes) {
		t.Fatalf("err %v", err)
	}
	bad := PeriodUsage{Outcomes: dec("1"), Models: []ModelUsage{{Provider: "p", Model: "m", Calls: 1, InputTokens: 1, CacheReadTokens: 2}}}
	if _, err := Decompose(bad, bad); err == nil {
		t.Fatal("inconsistent counts accepted")
	}
}
