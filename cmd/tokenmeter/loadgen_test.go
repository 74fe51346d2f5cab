//go:build demo

package main

import (
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/app"
	"github.com/tokenmeter/tokenmeter/internal/event"
)

func TestLoadgenPricesWithTheDemoPipelinesEngine(t *testing.T) {
	cfg, err := app.Load("../../pipelines/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	id, err := tenantOfToken(cfg, "demo-acme-token")
	if err != nil || id != "acme" {
		t.Fatalf("tenant of the demo token: %q, %v", id, err)
	}
	if _, err := tenantOfToken(cfg, "not-a-token"); err == nil {
		t.Fatal("an unknown token resolved to a tenant")
	}
	price, err := pricerFor(cfg, "acme")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		provider, model, want string
	}{
		// 1M input at USD 0.15/M list, acme's OpenAI contract takes 12.5% off:
		// 0.15 × 0.875 = 0.13125 USD; × 7.7850 HKD (rate of 2026-11-01) = 1.02178125 HKD.
		{"openai", "gpt-4o-mini", "1.02178125"},
		// 1M input at USD 1.00/M, no contract: 1.00 × 7.7850 = 7.785 HKD.
		{"anthropic", "claude-haiku-4-5", "7.785"},
	} {
		ev := event.UsageEvent{EventID: "x", EventTime: at, Tenant: "acme", Provider: tc.provider, Model: tc.model,
			ServiceTier: event.ServiceTierStandard, InputTokens: 1_000_000}
		amount, cur, err := price(&ev)
		if err != nil {
			t.Fatalf("%s: %v", tc.model, err)
		}
		if cur != "HKD" || amount.String() != tc.want {
			t.Errorf("%s: %s %s, want HKD %s", tc.model, cur, amount, tc.want)
		}
	}
}

func TestTargetFromListen(t *testing.T) {
	for in, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080",
		"0.0.0.0:9000":   "http://127.0.0.1:9000",
		"10.0.0.5:18080": "http://10.0.0.5:18080",
		"[::]:8080":      "http://127.0.0.1:8080",
		"garbage":        "http://127.0.0.1:8080",
	} {
		if got := targetFromListen(in); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func TestOTLPAddressFromFlagOrConfig(t *testing.T) {
	for _, tc := range []struct{ flag, listen, want string }{
		{"", ":4318", "127.0.0.1:4318"},
		{"", "", ""},         // the collector has the receiver off
		{"off", ":4318", ""}, // the user turns the path off
		{"10.1.1.1:4317", ":4317", "10.1.1.1:4317"},
	} {
		if got := flagOrConfig(tc.flag, tc.listen); got != tc.want {
			t.Errorf("flag %q listen %q: %q, want %q", tc.flag, tc.listen, got, tc.want)
		}
	}
}
