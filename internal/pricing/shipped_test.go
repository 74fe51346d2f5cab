package pricing

import (
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// The catalogue, contracts and FX rates shipped in pipelines/prices load
// cleanly and price the models the demo load generator sends.
func TestShippedCatalogue(t *testing.T) {
	e, err := Load(Config{
		Catalogues: []string{"prices/catalogue.yaml"},
		Contracts:  "prices/contracts.yaml",
		FX:         "prices/fx.csv",
	}, func(p string) string { return "../../pipelines/" + p })
	if err != nil {
		t.Fatalf("Load shipped files: %v", err)
	}
	now := at("2026-11-28T09:00:00Z")
	for _, m := range [][2]string{
		{"openai", "gpt-4o"}, {"openai", "gpt-4o-2024-08-06"}, {"openai", "gpt-4o-mini"}, {"openai", "o3"}, {"openai", "o4-mini"},
		{"openai", "gpt-5"}, {"openai", "gpt-5.4"}, {"anthropic", "claude-sonnet-4-5"}, {"anthropic", "claude-sonnet-4-5-20250929"},
		{"anthropic", "claude-haiku-4-5"}, {"anthropic", "claude-sonnet-4"}, {"gcp.gemini", "gemini-2.5-pro"}, {"google", "gemini-2.5-flash"},
		{"mistral_ai", "mistral-large-latest"}, {"deepseek", "deepseek-chat"}, {"aws.bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"},
		{"aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}, {"azure.ai.openai", "gpt-4o"},
	} {
		ev := event.UsageEvent{Tenant: "acme", Provider: m[0], Model: m[1], EventTime: now, InputTokens: 1000, CacheReadInputTokens: 200, OutputTokens: 500, ReasoningTokens: 100}
		var out event.PricedUsageEvent
		if err := e.Price(&ev, "HKD", &out); err != nil {
			t.Errorf("%s/%s: %v", m[0], m[1], err)
			continue
		}
		if out.EffectiveCost.Sign() <= 0 || out.BilledEffectiveCost.Sign() <= 0 {
			t.Errorf("%s/%s: costs %s USD %s HKD", m[0], m[1], out.EffectiveCost, out.BilledEffectiveCost)
		}
		checkSum(t, &out)
	}

	// Spot check against the catalogue's printed gpt-4o row (2.50 / 1.25 / 10.00) and the demo
	// contract (12.5% off for acme) and rate (2026-11-01: 7.7850):
	// list: 800 × 2.50/M + 200 × 1.25/M + 500 × 10/M = 0.002 + 0.00025 + 0.005 = 0.00725
	// contracted: 0.00725 × 0.875 = 0.00634375; HKD: 0.00634375 × 7.7850 = 0.049386093750
	ev := event.UsageEvent{Tenant: "acme", Provider: "openai", Model: "gpt-4o", EventTime: now, InputTokens: 1000, CacheReadInputTokens: 200, OutputTokens: 500}
	var out event.PricedUsageEvent
	if err := e.Price(&ev, "HKD", &out); err != nil {
		t.Fatal(err)
	}
	checkDec(t, "ListCost", out.ListCost, "0.00725")
	checkDec(t, "EffectiveCost", out.EffectiveCost, "0.00634375")
	checkDec(t, "BilledEffectiveCost", out.BilledEffectiveCost, "0.04938609375")
	if out.ContractID != "acme-openai-enterprise-2026" || out.FXDate != "2026-11-01" {
		t.Errorf("contract %q fx date %q", out.ContractID, out.FXDate)
	}

	// The load generator's deliberate unknown model is refused, not priced at zero.
	bad := event.UsageEvent{Tenant: "acme", Provider: "openai", Model: "gpt-imaginary-9", EventTime: now, InputTokens: 10}
	if err := e.Price(&bad, "HKD", &out); err == nil {
		t.Error("gpt-imaginary-9 was priced")
	}
}
