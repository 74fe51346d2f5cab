package pricing

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

func TestCheckFindsEveryProblem(t *testing.T) {
	f, err := ReadCatalogue("testdata/bad_catalogue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ps := Check([]*CatalogueFile{f}, []string{"bad.yaml"}, at("2026-11-28T00:00:00Z"))
	var all []string
	for _, p := range ps {
		all = append(all, p.String())
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{
		"error: bad.yaml: models[1] (acme/overlapper): overlaps",
		"error: bad.yaml: models[3] (acme/gappy): gap after bad.yaml: models[2] (acme/gappy): no price from 2026-02-01 to 2026-02-02",
		"error: bad.yaml: models[4] (acme/negative): prices.standard: input price -0.1 is negative",
		"error: bad.yaml: models[5] (acme/no-output): prices.standard: output price is required",
		"error: bad.yaml: models[6] (acme/unsourced): source is required",
		"error: bad.yaml: models[6] (acme/unsourced): read_on",
		"error: bad.yaml: models[7] (acme/long): prices.turbo: unknown tier",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing finding %q in:\n%s", want, text)
		}
	}
	if !HasErrors(ps) {
		t.Error("HasErrors = false")
	}
	// The shipped catalogue has no errors today (warnings allowed).
	shipped, err := ReadCatalogue("../../pipelines/prices/catalogue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Check([]*CatalogueFile{shipped}, []string{"catalogue.yaml"}, time.Now()) {
		if p.Severity == SeverityError {
			t.Errorf("shipped catalogue: %s", p)
		}
	}
}

func TestImportLiteLLM(t *testing.T) {
	in, err := os.Open("testdata/litellm_sample.json")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cat, skipped, err := ImportLiteLLM(in, LiteLLMOptions{ValidFrom: "2026-01-01", ReadOn: "2026-11-28", Source: "testdata/litellm_sample.json"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Models) != 6 || len(skipped) != 1 || !strings.HasPrefix(skipped[0], "256-x-256/dall-e-2") {
		t.Fatalf("imported %d models, skipped %v", len(cat.Models), skipped)
	}
	// Round-trip through YAML, as `tokenmeter prices import` writes it.
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(cat); err != nil {
		t.Fatal(err)
	}
	back, err := ParseCatalogue(buf.Bytes(), "imported.yaml")
	if err != nil {
		t.Fatalf("re-read: %v\n%s", err, buf.String())
	}
	if ps := Check([]*CatalogueFile{back}, nil, time.Time{}); HasErrors(ps) {
		t.Fatalf("imported catalogue does not check: %v", ps)
	}
	e, err := New([]*CatalogueFile{back}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, provider, model, tier string
		ev                          event.UsageEvent
		want, priceTier             string
	}{
		// 3e-06/token = 3.00/M; 1000 × 3/M + 1000 × 1.5e-05 = 0.003 + 0.015 = 0.018
		{name: "anthropic", provider: "anthropic", model: "claude-sonnet-4-5", ev: event.UsageEvent{InputTokens: 1000, OutputTokens: 1000}, want: "0.018", priceTier: "standard"},
		// 1h writes at 6e-06: 1000 × 6/M = 0.006
		{name: "1h cache write", provider: "anthropic", model: "claude-sonnet-4-5", ev: event.UsageEvent{InputTokens: 1000, CacheWriteInputTokens: 1000, CacheWrite1hInputTokens: 1000}, want: "0.006", priceTier: "standard"},
		// above 200k: 200001 × 6e-06 = 1.200006
		{name: "long context", provider: "anthropic", model: "claude-sonnet-4-5", ev: event.UsageEvent{InputTokens: 200001}, want: "1.200006", priceTier: "standard_long_context"},
		// batches: 1000 × 1.25e-06 + 1000 × 5e-06 = 0.00125 + 0.005 = 0.00625
		{name: "batch", provider: "openai", model: "gpt-4o", tier: "batch", ev: event.UsageEvent{InputTokens: 1000, OutputTokens: 1000}, want: "0.00625", priceTier: "batch"},
		// priority: 1000 uncached × 4.25e-06 + 1000 read × 2.125e-06 = 0.00425 + 0.002125 = 0.006375
		{name: "priority", provider: "openai", model: "gpt-4o", tier: "priority", ev: event.UsageEvent{InputTokens: 2000, CacheReadInputTokens: 1000}, want: "0.006375", priceTier: "priority"},
		// web search at medium context: 2 × 0.035 = 0.07
		{name: "web search", provider: "openai", model: "gpt-4o", ev: event.UsageEvent{Units: event.Units{WebSearches: 2}}, want: "0.07", priceTier: "standard"},
		// provider prefix stripped, gemini -> gcp.gemini; 1000 read × 1.25e-07 = 0.000125
		{name: "gemini", provider: "gcp.gemini", model: "gemini-2.5-pro", ev: event.UsageEvent{InputTokens: 1000, CacheReadInputTokens: 1000}, want: "0.000125", priceTier: "standard"},
		// 2.8e-09 survives exactly: 1000000 × 2.8e-09 = 0.0028
		{name: "tiny price", provider: "deepseek", model: "deepseek-chat", ev: event.UsageEvent{InputTokens: 1000000, CacheReadInputTokens: 1000000}, want: "0.0028", priceTier: "standard"},
		// mistral -> mistral_ai: 1000 × 5e-07 + 1000 × 1.5e-06 = 0.0005 + 0.0015 = 0.002
		{name: "mistral", provider: "mistral_ai", model: "mistral-large-latest", ev: event.UsageEvent{InputTokens: 1000, OutputTokens: 1000}, want: "0.002", priceTier: "standard"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := c.ev
			ev.Provider, ev.Model, ev.ServiceTier, ev.EventTime, ev.Tenant = c.provider, c.model, c.tier, at("2026-06-01T00:00:00Z"), "t"
			var out event.PricedUsageEvent
			if err := e.Price(&ev, "", &out); err != nil {
				t.Fatal(err)
			}
			checkDec(t, "EffectiveCost", out.EffectiveCost, c.want)
			if out.PricingTier != c.priceTier {
				t.Errorf("tier %s, want %s", out.PricingTier, c.priceTier)
			}
		})
	}
}
