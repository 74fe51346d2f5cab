package pricing

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/money"
)

// referencePrice prices ev with the decimal reference arithmetic only.
func referencePrice(t *testing.T, e *Engine, ev *event.UsageEvent, currency string) *event.PricedUsageEvent {
	t.Helper()
	m, perr := e.find(ev)
	if perr != nil {
		t.Fatalf("find: %v", perr)
	}
	var fx *fxPoint
	if currency != "" && currency != m.entry.currency {
		p, ok := e.fx.lookup(m.entry.currency, currency, floorDiv(ev.EventTime.Unix(), 86400))
		if !ok {
			t.Fatalf("no fx")
		}
		fx = p
	}
	q := quantitiesOf(ev)
	out := &event.PricedUsageEvent{}
	if !priceDecimal(&m, &q, fx, out) {
		t.Fatal("beyond Decimal(38, 12)")
	}
	return out
}

func comparePriced(t *testing.T, got, ref *event.PricedUsageEvent) {
	t.Helper()
	for _, f := range []struct {
		n    string
		a, b money.Amount
	}{
		{"CostInput", got.CostInput, ref.CostInput},
		{"CostCacheRead", got.CostCacheRead, ref.CostCacheRead},
		{"CostCacheWrite", got.CostCacheWrite, ref.CostCacheWrite},
		{"CostOutput", got.CostOutput, ref.CostOutput},
		{"CostReasoning", got.CostReasoning, ref.CostReasoning},
		{"CostUnits", got.CostUnits, ref.CostUnits},
		{"ListCost", got.ListCost, ref.ListCost},
		{"ContractedCost", got.ContractedCost, ref.ContractedCost},
		{"EffectiveCost", got.EffectiveCost, ref.EffectiveCost},
		{"CacheSavings", got.CacheSavings, ref.CacheSavings},
		{"BilledListCost", got.BilledListCost, ref.BilledListCost},
		{"BilledContractedCost", got.BilledContractedCost, ref.BilledContractedCost},
		{"BilledEffectiveCost", got.BilledEffectiveCost, ref.BilledEffectiveCost},
		{"BilledCacheSavings", got.BilledCacheSavings, ref.BilledCacheSavings},
	} {
		if f.a != f.b {
			t.Errorf("%s: fast path %s, decimal reference %s", f.n, f.a, f.b)
		}
	}
}

// randPrice returns a per-million price below 1000 with 3..maxDecimals decimals.
func randPrice(r *rand.Rand, maxDecimals int) Amount {
	d := decimal.New(r.Int64N(1_000_000), -int32(3+r.IntN(maxDecimals-2)))
	return Amount{D: d, Set: true}
}

// TestFixedMatchesDecimal: the int64 fast path and the shopspring/decimal
// reference agree exactly on random prices, discounts, FX rates and counts,
// including counts large enough to force the overflow fallback.
func TestFixedMatchesDecimal(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 4))
	fastUsed, slowUsed := 0, 0
	for iter := 0; iter < 400; iter++ {
		// Up to 5 decimals per million, plus 4 from a discount with 2 decimals,
		// stays representable at 10^-15 per token; every 10th set is too fine.
		maxDec := 5
		if iter%10 == 9 {
			maxDec = 14
		}
		rates := Rates{
			Input: randPrice(r, maxDec), CacheRead: randPrice(r, maxDec), CacheWrite: randPrice(r, maxDec),
			CacheWrite1h: randPrice(r, maxDec), Output: randPrice(r, maxDec), Reasoning: randPrice(r, maxDec),
			Image: randPrice(r, maxDec), Request: randPrice(r, maxDec),
		}
		cat := &CatalogueFile{Version: "prop", Currency: "USD", Models: []ModelEntry{{
			Provider: "p", Model: "m", ValidFrom: "2026-01-01", Prices: map[string]Rates{"standard": rates},
		}}}
		var contracts *ContractsFile
		if iter%2 == 0 {
			disc := Amount{D: decimal.New(r.Int64N(10001), -2), Set: true} // 0.00 .. 100.00 percent
			contracts = &ContractsFile{Contracts: []Contract{{ID: "k", Tenant: "t", ValidFrom: "2026-01-01", DiscountPercent: disc,
				Prices: map[string]Rates{"standard": {Output: randPrice(r, maxDec)}}}}}
		}
		fxRate := Amount{D: decimal.New(r.Int64N(10_000_000)+1, -int32(r.IntN(7))), Set: true}
		fx := &FXFile{Rates: []FXRate{{Date: "2026-01-01", Base: "USD", Quote: "HKD", Rate: fxRate}}}
		e, err := New([]*CatalogueFile{cat}, nil, contracts, fx)
		if err != nil {
			t.Fatal(err)
		}
		scale := int64(2_000_000)
		if iter%7 == 6 {
			scale = 1 << 40 // forces int64 overflow on some products
		}
		in := r.Int64N(scale)
		cr := r.Int64N(in/2 + 1)
		cw := r.Int64N(in - cr + 1)
		out := r.Int64N(scale)
		ev := event.UsageEvent{Tenant: "t", Provider: "p", Model: "m", EventTime: at("2026-06-01T00:00:00Z"),
			InputTokens: in, CacheReadInputTokens: cr, CacheWriteInputTokens: cw, CacheWrite1hInputTokens: r.Int64N(cw + 1),
			OutputTokens: out, ReasoningTokens: r.Int64N(out + 1), Units: event.Units{Images: r.Int64N(10), Requests: 1}}
		for _, cur := range []string{"", "HKD"} {
			t.Run(fmt.Sprintf("%d/%s", iter, cur), func(t *testing.T) {
				m, perr := e.find(&ev)
				if perr != nil {
					t.Fatal(perr)
				}
				var fxp *fxPoint
				if cur != "" {
					fxp, _ = e.fx.lookup("USD", cur, floorDiv(ev.EventTime.Unix(), 86400))
				}
				q := quantitiesOf(&ev)
				var fast event.PricedUsageEvent
				if e.priceFixed(&m, &q, fxp, &fast) {
					fastUsed++
				} else {
					slowUsed++
					return
				}
				ref := referencePrice(t, e, &ev, cur)
				comparePriced(t, &fast, ref)
				checkSum(t, &fast)
			})
		}
	}
	t.Logf("fast path %d, decimal fallback %d", fastUsed, slowUsed)
	if fastUsed < 500 || slowUsed == 0 {
		t.Errorf("property test did not exercise both paths: fast %d, fallback %d", fastUsed, slowUsed)
	}
}

func BenchmarkPrice(b *testing.B) {
	e := testEngine(b)
	ev := event.UsageEvent{EventID: "e", Tenant: "beta", Provider: "anthropic", Model: "claude-sonnet-4-5-20250929",
		EventTime: at("2026-11-28T10:00:00Z"), InputTokens: 12000, CacheReadInputTokens: 8000, CacheWriteInputTokens: 2000,
		OutputTokens: 900, ReasoningTokens: 300}
	for _, bc := range []struct {
		name, cur, tenant string
	}{{"USD", "", "beta"}, {"HKD", "HKD", "beta"}, {"HKD_contract", "HKD", "acme"}} {
		b.Run(bc.name, func(b *testing.B) {
			ev := ev
			ev.Tenant = bc.tenant
			var out event.PricedUsageEvent
			b.ReportAllocs()
			for b.Loop() {
				if err := e.Price(&ev, bc.cur, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("pattern_model", func(b *testing.B) {
		ev := ev
		ev.Model = "gpt-4o-2024-08-06"
		ev.Provider = "openai"
		var out event.PricedUsageEvent
		b.ReportAllocs()
		for b.Loop() {
			if err := e.Price(&ev, "HKD", &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPriceDecimalOnly prices the same event with the shopspring/decimal
// reference arithmetic alone, to show what the fixed-point path saves.
func BenchmarkPriceDecimalOnly(b *testing.B) {
	e := testEngine(b)
	ev := event.UsageEvent{EventID: "e", Tenant: "beta", Provider: "anthropic", Model: "claude-sonnet-4-5-20250929",
		EventTime: at("2026-11-28T10:00:00Z"), InputTokens: 12000, CacheReadInputTokens: 8000, CacheWriteInputTokens: 2000,
		OutputTokens: 900, ReasoningTokens: 300}
	m, perr := e.find(&ev)
	if perr != nil {
		b.Fatal(perr)
	}
	fx, _ := e.fx.lookup("USD", "HKD", floorDiv(ev.EventTime.Unix(), 86400))
	var out event.PricedUsageEvent
	b.ReportAllocs()
	for b.Loop() {
		q := quantitiesOf(&ev)
		priceDecimal(&m, &q, fx, &out)
	}
}
