package pricing

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/money"
)

func testEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := Load(Config{
		Catalogues: []string{"catalogue.yaml"},
		Contracts:  "contracts.yaml",
		FX:         "fx.csv",
	}, func(p string) string { return "testdata/" + p })
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return e
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// want lists the expected values; empty strings are not checked.
type want struct {
	priceID, tier, contract                                string
	uncached, nonReasoning                                 int64
	input, cacheRead, cacheWrite, output, reasoning, units string
	list, contracted, effective, savings                   string
	billingCurrency, fxRate, fxDate                        string
	billedEffective, billedList                            string
}

func dec(t *testing.T, s string) decimal.Decimal {
	t.Helper()
	d, err := decimal.NewFromString(s)
	if err != nil {
		t.Fatalf("bad expected decimal %q", s)
	}
	return d
}

func checkDec(t *testing.T, field string, got money.Amount, wantS string) {
	t.Helper()
	if wantS == "" {
		return
	}
	if w := dec(t, wantS); !got.Decimal().Equal(w) {
		t.Errorf("%s = %s, want %s", field, got, w)
	}
}

// checkSum asserts invariant 4's bookkeeping: class costs add up to the total, exactly.
func checkSum(t *testing.T, p *event.PricedUsageEvent) {
	t.Helper()
	sum := p.CostInput.Add(p.CostCacheRead).Add(p.CostCacheWrite).Add(p.CostOutput).Add(p.CostReasoning).Add(p.CostUnits)
	if sum != p.EffectiveCost {
		t.Errorf("class costs sum to %s, EffectiveCost is %s", sum, p.EffectiveCost)
	}
}

func TestPrice(t *testing.T) {
	e := testEngine(t)
	cases := []struct {
		name     string
		ev       event.UsageEvent
		currency string
		want     want
	}{
		{
			// uncached 10000-6000-3000 = 1000 × 3/M    = 0.003
			// cache read 6000 × 0.30/M                 = 0.0018
			// write 5m (3000-1000) 2000 × 3.75/M       = 0.0075
			// write 1h 1000 × 6/M                      = 0.006   → cache write 0.0135
			// output 500 × 15/M                        = 0.0075
			// total 0.003+0.0018+0.0135+0.0075         = 0.0258
			// savings 6000 × (3-0.30)/M = 6000×2.7/M   = 0.0162
			name: "cache read and 5m/1h writes",
			ev: event.UsageEvent{Tenant: "beta", Provider: "anthropic", Model: "claude-sonnet-4-5-20250929", EventTime: at("2026-06-01T12:00:00Z"),
				InputTokens: 10000, CacheReadInputTokens: 6000, CacheWriteInputTokens: 3000, CacheWrite1hInputTokens: 1000, OutputTokens: 500},
			want: want{priceID: "anthropic/claude-sonnet-4-5/standard@2025-09-29", tier: "standard", uncached: 1000, nonReasoning: 500,
				input: "0.003", cacheRead: "0.0018", cacheWrite: "0.0135", output: "0.0075", reasoning: "0", units: "0",
				list: "0.0258", contracted: "0.0258", effective: "0.0258", savings: "0.0162",
				billingCurrency: "USD", fxRate: "1", fxDate: "2026-06-01", billedEffective: "0.0258"},
		},
		{
			// input 1000 × 1/M = 0.001; non-reasoning (3000-2000) 1000 × 10/M = 0.01;
			// reasoning 2000 × 20/M = 0.04; total 0.051
			name: "reasoning at its own rate",
			ev: event.UsageEvent{Tenant: "beta", Provider: "testco", Model: "thinker", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 1000, OutputTokens: 3000, ReasoningTokens: 2000},
			want: want{tier: "standard", uncached: 1000, nonReasoning: 1000,
				input: "0.001", output: "0.01", reasoning: "0.04", list: "0.051", effective: "0.051"},
		},
		{
			// reasoning defaults to output: 2000 × 1.10/M = 0.0022; (1000-800) 200 × 4.40/M = 0.00088;
			// 800 × 4.40/M = 0.00352; total 0.0066 (= 0.0022 + 1000 × 4.40/M)
			name: "reasoning defaults to output price",
			ev: event.UsageEvent{Tenant: "beta", Provider: "openai", Model: "o4-mini", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 2000, OutputTokens: 1000, ReasoningTokens: 800},
			want: want{input: "0.0022", output: "0.00088", reasoning: "0.00352", list: "0.0066", effective: "0.0066"},
		},
		{
			// batch: 100000 × 1.25/M = 0.125; 20000 × 5/M = 0.1; total 0.225
			name: "batch tier",
			ev: event.UsageEvent{Tenant: "beta", Provider: "openai", Model: "gpt-4o-2024-08-06", ServiceTier: "batch", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 100000, OutputTokens: 20000},
			want: want{priceID: "openai/gpt-4o/batch@2024-08-06", tier: "batch", input: "0.125", output: "0.1", list: "0.225", effective: "0.225"},
		},
		{
			// priority: uncached 6000 × 4.25/M = 0.0255; read 4000 × 2.125/M = 0.0085; out 1000 × 17/M = 0.017
			// total 0.051; savings 4000 × (4.25-2.125)/M = 0.0085
			name: "priority tier",
			ev: event.UsageEvent{Tenant: "beta", Provider: "openai", Model: "gpt-4o", ServiceTier: "priority", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 10000, CacheReadInputTokens: 4000, OutputTokens: 1000},
			want: want{priceID: "openai/gpt-4o/priority@2024-08-06", tier: "priority", uncached: 6000,
				input: "0.0255", cacheRead: "0.0085", output: "0.017", list: "0.051", effective: "0.051", savings: "0.0085"},
		},
		{
			// exactly at the threshold is standard: 200000 × 3/M = 0.6; 1000 × 15/M = 0.015; total 0.615
			name: "long context: 200000 input tokens is standard",
			ev: event.UsageEvent{Tenant: "beta", Provider: "anthropic", Model: "claude-sonnet-4-5", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 200000, OutputTokens: 1000},
			want: want{tier: "standard", priceID: "anthropic/claude-sonnet-4-5/standard@2025-09-29", input: "0.6", output: "0.015", list: "0.615"},
		},
		{
			// one above: every class at long-context rates: 200001 × 6/M = 1.200006; 1000 × 22.50/M = 0.0225; total 1.222506
			name: "long context: 200001 input tokens is long context",
			ev: event.UsageEvent{Tenant: "beta", Provider: "anthropic", Model: "claude-sonnet-4-5", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 200001, OutputTokens: 1000},
			want: want{tier: "standard_long_context", priceID: "anthropic/claude-sonnet-4-5/standard_long_context@2025-09-29",
				input: "1.200006", output: "0.0225", list: "1.222506", effective: "1.222506"},
		},
		{
			// cache reads count toward the threshold and are billed long too:
			// uncached 100001 × 6/M = 0.600006; read 100000 × 0.60/M = 0.06; out 1000 × 22.50/M = 0.0225; total 0.682506
			// savings 100000 × (6-0.60)/M = 0.54
			name: "long context includes cached input",
			ev: event.UsageEvent{Tenant: "beta", Provider: "anthropic", Model: "claude-sonnet-4-5", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 200001, CacheReadInputTokens: 100000, OutputTokens: 1000},
			want: want{tier: "standard_long_context", input: "0.600006", cacheRead: "0.06", output: "0.0225", list: "0.682506", savings: "0.54"},
		},
		{
			// last millisecond before the change: 1000 × 1/M + 1000 × 2/M = 0.003
			name: "price change: 23:59:59.999 UTC uses the old price",
			ev: event.UsageEvent{Tenant: "beta", Provider: "testco", Model: "widget", EventTime: at("2026-02-28T23:59:59.999Z"),
				InputTokens: 1000, OutputTokens: 1000},
			want: want{priceID: "testco/widget/standard@2026-01-01", list: "0.003"},
		},
		{
			// from midnight: 1000 × 0.50/M + 1000 × 1/M = 0.0015
			name: "price change: 00:00:00.000 UTC uses the new price",
			ev: event.UsageEvent{Tenant: "beta", Provider: "testco", Model: "widget", EventTime: at("2026-03-01T00:00:00Z"),
				InputTokens: 1000, OutputTokens: 1000},
			want: want{priceID: "testco/widget/standard@2026-03-01", list: "0.0015"},
		},
		{
			// the same instant written in +08:00 is still 2026-02-28T23:30Z: old price
			name: "price change: local-time offsets are compared in UTC",
			ev: event.UsageEvent{Tenant: "beta", Provider: "testco", Model: "widget", EventTime: at("2026-03-01T07:30:00+08:00"),
				InputTokens: 1000, OutputTokens: 1000},
			want: want{priceID: "testco/widget/standard@2026-01-01", list: "0.003"},
		},
		{
			// list: uncached 6000 × 2.50/M = 0.015; read 4000 × 1.25/M = 0.005; out 1000 × 10/M = 0.01; total 0.03
			// 10% off each class: 0.0135 + 0.0045 + 0.009 = 0.027
			// savings at list: 4000 × (2.50-1.25)/M = 0.005
			name: "contract discount",
			ev: event.UsageEvent{Tenant: "acme", Provider: "openai", Model: "gpt-4o", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 10000, CacheReadInputTokens: 4000, OutputTokens: 1000},
			want: want{contract: "acme-openai", input: "0.0135", cacheRead: "0.0045", output: "0.009",
				list: "0.03", contracted: "0.027", effective: "0.027", savings: "0.005"},
		},
		{
			// list 10000 × 3/M + 1000 × 15/M = 0.03 + 0.015 = 0.045
			// contracted unit prices: 10000 × 2.40/M = 0.024; 1000 × 12/M = 0.012; total 0.036
			// (the model contract beats the provider-wide 20% one)
			name: "contracted unit price, most specific contract wins",
			ev: event.UsageEvent{Tenant: "acme", Provider: "anthropic", Model: "claude-sonnet-4-5", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 10000, OutputTokens: 1000},
			want: want{contract: "acme-sonnet", input: "0.024", output: "0.012", list: "0.045", contracted: "0.036", effective: "0.036"},
		},
		{
			// classes the contract does not price: cache read at list 0.30 (no discount in acme-sonnet):
			// uncached 5000 × 2.40/M = 0.012; read 5000 × 0.30/M = 0.0015; total 0.0135
			// list 5000 × 3/M + 5000 × 0.30/M = 0.015 + 0.0015 = 0.0165
			name: "contracted unit price leaves unpriced classes at list",
			ev: event.UsageEvent{Tenant: "acme", Provider: "anthropic", Model: "claude-sonnet-4-5", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 10000, CacheReadInputTokens: 5000},
			want: want{contract: "acme-sonnet", input: "0.012", cacheRead: "0.0015", list: "0.0165", effective: "0.0135"},
		},
		{
			// acme-sonnet has terms for the standard tier only, so a long-context request falls
			// through to the provider-wide acme-anthropic 20% discount:
			// list 200001 × 6/M + 1000 × 22.50/M = 1.200006 + 0.0225 = 1.222506; × 0.8 = 0.9780048
			name: "contract without terms for a tier falls through to a wider contract",
			ev: event.UsageEvent{Tenant: "acme", Provider: "anthropic", Model: "claude-sonnet-4-5", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 200001, OutputTokens: 1000},
			want: want{contract: "acme-anthropic", tier: "standard_long_context", list: "1.222506", effective: "0.9780048",
				input: "0.9600048", output: "0.018"},
		},
		{
			// provider-wide 20% off: list 1000 × 1/M + 1000 × 5/M = 0.006; × 0.8 = 0.0048
			name: "provider-wide contract",
			ev: event.UsageEvent{Tenant: "acme", Provider: "anthropic", Model: "claude-haiku-4-5", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 1000, OutputTokens: 1000},
			want: want{contract: "acme-anthropic", input: "0.0008", output: "0.004", list: "0.006", effective: "0.0048"},
		},
		{
			// before the contract's valid_from: list price, no contract
			name: "contract not yet in force",
			ev: event.UsageEvent{Tenant: "acme", Provider: "anthropic", Model: "claude-haiku-4-5", EventTime: at("2025-12-31T23:59:59.999Z"),
				InputTokens: 1000, OutputTokens: 1000},
			want: want{contract: "", list: "0.006", effective: "0.006"},
		},
		{
			// 1000 × 2.50/M + 1000 × 10/M = 0.0125 USD; × 7.7812 = 0.097265 HKD
			name: "FX USD to HKD, rate of the same UTC day",
			ev: event.UsageEvent{Tenant: "beta", Provider: "openai", Model: "gpt-4o", EventTime: at("2026-11-28T10:00:00Z"),
				InputTokens: 1000, OutputTokens: 1000},
			currency: "HKD",
			want:     want{effective: "0.0125", billingCurrency: "HKD", fxRate: "7.7812", fxDate: "2026-11-28", billedEffective: "0.097265", billedList: "0.097265"},
		},
		{
			// 23:00Z on the 27th is the 28th in Hong Kong, but FX uses the UTC date: 0.0125 × 7.78 = 0.09725
			name: "FX uses the UTC date",
			ev: event.UsageEvent{Tenant: "beta", Provider: "openai", Model: "gpt-4o", EventTime: at("2026-11-27T23:00:00Z"),
				InputTokens: 1000, OutputTokens: 1000},
			currency: "HKD",
			want:     want{fxRate: "7.78", fxDate: "2026-11-27", billedEffective: "0.09725"},
		},
		{
			// latest rate on or before: 2026-12-05 uses the 2026-11-28 rate: 0.0125 × 7.7812 = 0.097265
			name: "FX latest rate on or before",
			ev: event.UsageEvent{Tenant: "beta", Provider: "openai", Model: "gpt-4o", EventTime: at("2026-12-05T00:00:00Z"),
				InputTokens: 1000, OutputTokens: 1000},
			currency: "HKD",
			want:     want{fxRate: "7.7812", fxDate: "2026-11-28", billedEffective: "0.097265"},
		},
		{
			// contract and FX together: 0.027 USD (see "contract discount") × 7.7812 = 0.2100924 HKD;
			// list 0.03 × 7.7812 = 0.233436
			name: "contract and FX",
			ev: event.UsageEvent{Tenant: "acme", Provider: "openai", Model: "gpt-4o", EventTime: at("2026-11-28T00:00:00Z"),
				InputTokens: 10000, CacheReadInputTokens: 4000, OutputTokens: 1000},
			currency: "HKD",
			want:     want{contract: "acme-openai", effective: "0.027", billedEffective: "0.2100924", billedList: "0.233436"},
		},
		{
			// 3 images × 0.04 + 1 request × 0.01 + 2 web searches × 0.025 = 0.12 + 0.01 + 0.05 = 0.18
			name: "non-token units",
			ev: event.UsageEvent{Tenant: "beta", Provider: "testco", Model: "imager", EventTime: at("2026-06-01T00:00:00Z"),
				Units: event.Units{Images: 3, Requests: 1, WebSearches: 2, ToolCalls: 5}},
			want: want{units: "0.18", list: "0.18", effective: "0.18", input: "0", output: "0"},
		},
		{
			// provider alias and upper case: google → gcp.gemini; 1000 × 0.30/M + 1000 × 2.50/M = 0.0028
			name: "provider alias and case",
			ev: event.UsageEvent{Tenant: "beta", Provider: "Google", Model: "Gemini-2.5-Flash", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 1000, OutputTokens: 1000},
			want: want{priceID: "gcp.gemini/gemini-2.5-flash/standard@2025-06-17", list: "0.0028"},
		},
		{
			// alias: gpt-4o-latest → gpt-4o; 1000000 × 2.50/M = 2.5
			name: "alias",
			ev: event.UsageEvent{Tenant: "beta", Provider: "openai", Model: "gpt-4o-latest", EventTime: at("2026-06-01T00:00:00Z"),
				InputTokens: 1000000},
			want: want{priceID: "openai/gpt-4o/standard@2024-08-06", list: "2.5"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out event.PricedUsageEvent
			out.UsageEvent = c.ev
			if err := e.Price(&c.ev, c.currency, &out); err != nil {
				t.Fatalf("Price: %v", err)
			}
			w := c.want
			if w.priceID != "" && out.PriceID != w.priceID {
				t.Errorf("PriceID = %q, want %q", out.PriceID, w.priceID)
			}
			if w.tier != "" && out.PricingTier != w.tier {
				t.Errorf("PricingTier = %q, want %q", out.PricingTier, w.tier)
			}
			if out.ContractID != w.contract {
				t.Errorf("ContractID = %q, want %q", out.ContractID, w.contract)
			}
			if w.uncached != 0 && out.UncachedInputTokens != w.uncached {
				t.Errorf("UncachedInputTokens = %d, want %d", out.UncachedInputTokens, w.uncached)
			}
			if w.nonReasoning != 0 && out.NonReasoningOutTokens != w.nonReasoning {
				t.Errorf("NonReasoningOutTokens = %d, want %d", out.NonReasoningOutTokens, w.nonReasoning)
			}
			checkDec(t, "CostInput", out.CostInput, w.input)
			checkDec(t, "CostCacheRead", out.CostCacheRead, w.cacheRead)
			checkDec(t, "CostCacheWrite", out.CostCacheWrite, w.cacheWrite)
			checkDec(t, "CostOutput", out.CostOutput, w.output)
			checkDec(t, "CostReasoning", out.CostReasoning, w.reasoning)
			checkDec(t, "CostUnits", out.CostUnits, w.units)
			checkDec(t, "ListCost", out.ListCost, w.list)
			checkDec(t, "ContractedCost", out.ContractedCost, w.contracted)
			checkDec(t, "EffectiveCost", out.EffectiveCost, w.effective)
			checkDec(t, "CacheSavings", out.CacheSavings, w.savings)
			checkDec(t, "FXRate", out.FXRate, w.fxRate)
			checkDec(t, "BilledEffectiveCost", out.BilledEffectiveCost, w.billedEffective)
			checkDec(t, "BilledListCost", out.BilledListCost, w.billedList)
			if w.billingCurrency != "" && out.BillingCurrency != w.billingCurrency {
				t.Errorf("BillingCurrency = %q, want %q", out.BillingCurrency, w.billingCurrency)
			}
			if w.fxDate != "" && out.FXDate != w.fxDate {
				t.Errorf("FXDate = %q, want %q", out.FXDate, w.fxDate)
			}
			if out.PricingCurrency != "USD" || out.PriceSource != "test-2026" {
				t.Errorf("PricingCurrency/PriceSource = %q/%q", out.PricingCurrency, out.PriceSource)
			}
			if out.ContractedCost != out.EffectiveCost {
				t.Errorf("EffectiveCost %s != ContractedCost %s", out.EffectiveCost, out.ContractedCost)
			}
			checkSum(t, &out)
			// The decimal reference path must agree with whatever path Price took.
			ref := referencePrice(t, e, &c.ev, c.currency)
			comparePriced(t, &out, ref)
		})
	}
}

func TestPriceRefuses(t *testing.T) {
	e := testEngine(t)
	cases := []struct {
		name     string
		ev       event.UsageEvent
		currency string
		reason   string
	}{
		{"unknown model", event.UsageEvent{Provider: "openai", Model: "gpt-9", EventTime: at("2026-06-01T00:00:00Z"), InputTokens: 10}, "", ReasonUnknownModel},
		{"unknown provider", event.UsageEvent{Provider: "nobody", Model: "gpt-4o", EventTime: at("2026-06-01T00:00:00Z"), InputTokens: 10}, "", ReasonUnknownModel},
		{"pattern does not swallow other models", event.UsageEvent{Provider: "openai", Model: "gpt-4o-mini-2024-07-18", EventTime: at("2026-06-01T00:00:00Z")}, "", ReasonUnknownModel},
		{"before the first valid_from", event.UsageEvent{Provider: "testco", Model: "widget", EventTime: at("2025-12-31T23:59:59.999Z")}, "", ReasonUnknownModel},
		{"tier without a price", event.UsageEvent{Provider: "anthropic", Model: "claude-sonnet-4-5", ServiceTier: "flex", EventTime: at("2026-06-01T00:00:00Z")}, "", ReasonUnknownModel},
		{"long-context tier without a price", event.UsageEvent{Provider: "anthropic", Model: "claude-sonnet-4-5", ServiceTier: "batch", InputTokens: 200001, EventTime: at("2026-06-01T00:00:00Z")}, "", ReasonUnknownModel},
		{"no FX rate before the first one", event.UsageEvent{Provider: "openai", Model: "gpt-4o", EventTime: at("2026-11-25T23:59:59Z"), InputTokens: 10}, "HKD", ReasonFXMissing},
		{"no FX pair", event.UsageEvent{Provider: "openai", Model: "gpt-4o", EventTime: at("2026-11-28T00:00:00Z"), InputTokens: 10}, "EUR", ReasonFXMissing},
		{"cache subsets larger than input", event.UsageEvent{Provider: "openai", Model: "gpt-4o", EventTime: at("2026-06-01T00:00:00Z"), InputTokens: 100, CacheReadInputTokens: 60, CacheWriteInputTokens: 41}, "", ReasonInvalidUsage},
		{"1h writes larger than writes", event.UsageEvent{Provider: "openai", Model: "gpt-4o", EventTime: at("2026-06-01T00:00:00Z"), InputTokens: 100, CacheWriteInputTokens: 10, CacheWrite1hInputTokens: 11}, "", ReasonInvalidUsage},
		{"reasoning larger than output", event.UsageEvent{Provider: "openai", Model: "gpt-4o", EventTime: at("2026-06-01T00:00:00Z"), OutputTokens: 5, ReasoningTokens: 6}, "", ReasonInvalidUsage},
		{"negative count", event.UsageEvent{Provider: "openai", Model: "gpt-4o", EventTime: at("2026-06-01T00:00:00Z"), InputTokens: -1}, "", ReasonInvalidUsage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.ev.Tenant, c.ev.EventID = "beta", "e1"
			out := event.PricedUsageEvent{UsageEvent: c.ev}
			err := e.Price(&c.ev, c.currency, &out)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Price error = %v, want *Error %s", err, c.reason)
			}
			if pe.Reason != c.reason {
				t.Fatalf("reason = %s (%s), want %s", pe.Reason, pe.Detail, c.reason)
			}
			if !out.EffectiveCost.IsZero() || out.PriceID != "" {
				t.Errorf("a refused event must not be priced, got %s %q", out.EffectiveCost, out.PriceID)
			}
			if c.reason == ReasonInvalidUsage {
				// event.Validate rejects the same events upstream.
				if err := c.ev.Validate(time.Time{}); err == nil {
					t.Errorf("event.Validate accepted inconsistent counts")
				}
			}
		})
	}
}

func TestEstimate(t *testing.T) {
	e := testEngine(t)
	// 10000 × 2.50/M + 2000 × 10/M = 0.025 + 0.02 = 0.045 USD, × 0.9 (acme-openai) = 0.0405,
	// × 7.7812 HKD = 0.3151386
	p, err := e.Estimate(EstimateRequest{Tenant: "acme", Provider: "openai", Model: "gpt-4o", At: at("2026-11-28T08:00:00Z"),
		InputTokens: 10000, OutputTokens: 2000, BillingCurrency: "HKD"})
	if err != nil {
		t.Fatal(err)
	}
	checkDec(t, "EffectiveCost", p.EffectiveCost, "0.0405")
	checkDec(t, "BilledEffectiveCost", p.BilledEffectiveCost, "0.3151386")
	if _, err := e.Estimate(EstimateRequest{Provider: "openai", Model: "nope", At: at("2026-11-28T08:00:00Z")}); err == nil {
		t.Fatal("Estimate of an unknown model succeeded")
	}
}
