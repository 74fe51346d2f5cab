package levers

import (
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

func testEngine(t *testing.T) *pricing.Engine {
	t.Helper()
	e, err := pricing.Load(pricing.Config{Catalogues: []string{"catalogue.yaml"}, Contracts: "contracts.yaml", FX: "fx.csv"},
		func(p string) string { return "testdata/" + p })
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRepriceOnACheaperModelByHand(t *testing.T) {
	e := testEngine(t)
	groups := []UsageGroup{
		// June, on small at 1/M input (no cache price: reads bill as input),
		// 4/M output: 50,000 x 1/M + 5,000 x 4/M = 0.07 USD, contract -10%
		// = 0.063, x 7.8 = 0.4914 HKD.
		{At: time.Date(2026, 6, 15, 10, 0, 0, 0, time.UTC), Tenant: "acme", Calls: 10,
			InputTokens: 50000, CacheReadTokens: 20000, OutputTokens: 5000, Actual: dec("5"), BillingCurrency: "HKD"},
		// July, after small's price cut to 0.50/M and 2/M: 0.005 + 0.002 =
		// 0.007, -10% = 0.0063, x 7.75 = 0.048825 HKD.
		{At: time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC), Tenant: "acme", Calls: 5,
			InputTokens: 10000, OutputTokens: 1000, Actual: dec("1"), BillingCurrency: "HKD"},
		// Long-context calls: small has no such tier, so they stay out of
		// both sides and are counted.
		{At: time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC), Tenant: "acme", Calls: 2, Long: true,
			InputTokens: 300000, OutputTokens: 100, Actual: dec("3"), BillingCurrency: "HKD"},
	}
	w, err := Reprice(e, groups, Candidate{"openai", "small"}, CacheSame)
	if err != nil {
		t.Fatal(err)
	}
	if w.Calls != 15 || w.Unpriced != 2 || len(w.Reasons) != 1 {
		t.Fatalf("calls %d unpriced %d reasons %v", w.Calls, w.Unpriced, w.Reasons)
	}
	if !w.Actual.Equal(dec("6")) || !w.Repriced.Equal(dec("0.540225")) || !w.Saving().Equal(dec("5.459775")) {
		t.Fatalf("actual %s repriced %s saving %s", w.Actual, w.Repriced, w.Saving())
	}
}

func TestRepriceCacheAssumptionAndLongContext(t *testing.T) {
	e := testEngine(t)
	g := UsageGroup{At: time.Date(2026, 6, 15, 10, 0, 0, 0, time.UTC), Tenant: "acme", Calls: 10,
		InputTokens: 50000, CacheReadTokens: 20000, OutputTokens: 5000, Actual: dec("1"), BillingCurrency: "HKD"}
	// big keeps the cache: 30,000 x 10/M + 20,000 x 1/M + 5,000 x 30/M
	// = 0.30 + 0.02 + 0.15 = 0.47 USD x 7.8 = 3.666 HKD.
	same, err := Reprice(e, []UsageGroup{g}, Candidate{"openai", "big"}, CacheSame)
	if err != nil || !same.Repriced.Equal(dec("3.666")) {
		t.Fatalf("same: %v %s", err, same.Repriced)
	}
	// Without the cache: 50,000 x 10/M + 0.15 = 0.65 USD x 7.8 = 5.07 HKD.
	none, err := Reprice(e, []UsageGroup{g}, Candidate{"openai", "big"}, CacheNone)
	if err != nil || !none.Repriced.Equal(dec("5.07")) {
		t.Fatalf("none: %v %s", err, none.Repriced)
	}
	// The same calls above big's threshold, as one long group: 30,000 x 20/M
	// + 20,000 x 2/M + 5,000 x 45/M = 0.6 + 0.04 + 0.225 = 0.865 x 7.8 = 6.747.
	g.Long = true
	long, err := Reprice(e, []UsageGroup{g}, Candidate{"openai", "big"}, CacheSame)
	if err != nil || !long.Repriced.Equal(dec("6.747")) {
		t.Fatalf("long: %v %s", err, long.Repriced)
	}
	if _, err := Reprice(e, []UsageGroup{g}, Candidate{"openai", "big"}, "maybe"); err == nil {
		t.Fatal("unknown cache assumption accepted")
	}
}
