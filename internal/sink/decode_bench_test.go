package sink

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/money"
)

func benchEvent() event.PricedUsageEvent {
	d := func(s string) money.Amount { return money.MustDecimal(decimal.RequireFromString(s)) }
	return event.PricedUsageEvent{
		UsageEvent: event.UsageEvent{
			EventID: "c0ffee-0001", EventTime: time.Date(2026, 11, 28, 9, 0, 0, 123e6, time.UTC), Tenant: "acme",
			Provider: "anthropic", Model: "claude-sonnet-4-5", Operation: "chat", ServiceTier: "standard",
			InputTokens: 12000, CacheReadInputTokens: 8000, CacheWriteInputTokens: 2000, OutputTokens: 900, ReasoningTokens: 300,
			Workflow: "legal-research", PromptTemplate: "case-summary", PromptVersion: "v7", UserID: "u-17", Team: "legal",
			Application: "legal-research", Environment: "prod", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
			Attributes: map[string]string{"service.name": "legal-research"},
		},
		TaskID: "4bf92f3577b34da6a3ce929d0e0e4736", PriceID: "anthropic/claude-sonnet-4-5/standard@2025-09-29", PriceSource: "catalogue-2026-11-28",
		PricingTier: "standard", UncachedInputTokens: 2000, NonReasoningOutTokens: 600,
		CostInput: d("0.006"), CostCacheRead: d("0.0024"), CostCacheWrite: d("0.0075"), CostOutput: d("0.009"), CostReasoning: d("0.0045"),
		PricingCurrency: "USD", ListCost: d("0.0294"), ContractedCost: d("0.0294"), EffectiveCost: d("0.0294"), CacheSavings: d("0.0216"),
		BillingCurrency: "HKD", FXRate: d("7.785"), FXDate: "2026-11-01", BilledListCost: d("0.228879"), BilledContractedCost: d("0.228879"),
		BilledEffectiveCost: d("0.228879"), BilledCacheSavings: d("0.168156"), PricedAt: time.Date(2026, 11, 28, 9, 0, 1, 0, time.UTC),
		LocalDate: "2026-11-28", TimeZone: "Asia/Hong_Kong",
	}
}

// BenchmarkDecodePriced measures the sink's per-record decode of a realistic
// priced.v1 record (the sink's largest CPU cost end to end).
func BenchmarkDecodePriced(b *testing.B) {
	ev := benchEvent()
	raw := pricedValue(b, &ev)
	benchDecode(b, raw)
}

// BenchmarkDecodePricedLegacyJSON is the same record as processors before
// the binary contract wrote it (JSON), still readable.
func BenchmarkDecodePricedLegacyJSON(b *testing.B) {
	ev := benchEvent()
	raw, err := json.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	benchDecode(b, raw)
}

func benchDecode(b *testing.B, raw []byte) {
	z := &zoner{}
	b.SetBytes(int64(len(raw)))
	b.ReportMetric(float64(len(raw)), "bytes/record")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := decodePriced(z, raw); err != nil {
			b.Fatal(err)
		}
	}
}
