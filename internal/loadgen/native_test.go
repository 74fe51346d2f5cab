package loadgen

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/ingest"
)

func TestNativeItemsUseEachProvidersConvention(t *testing.T) {
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	mk := func(m Model, in, cr, cw, out, rs int64) Call {
		return Call{Path: PathNative, Native: nativeShape(m), Event: event.UsageEvent{
			EventID: "e1", EventTime: at, Tenant: "acme", Provider: m.Provider, Model: m.Name, Workflow: "w",
			InputTokens: in, CacheReadInputTokens: cr, CacheWriteInputTokens: cw, OutputTokens: out, ReasoningTokens: rs}}
	}
	for _, tc := range []struct {
		name  string
		call  Call
		key   string
		usage map[string]any // the provider's own numbers, worked out by hand
	}{
		{"openai chat: prompt_tokens includes cached", mk(ModelGPT4oMini, 4000, 2048, 0, 500, 0), "usage", map[string]any{
			"prompt_tokens": 4000.0, "completion_tokens": 500.0, "total_tokens": 4500.0,
			"prompt_tokens_details": map[string]any{"cached_tokens": 2048.0}}},
		{"openai responses: output includes reasoning", mk(ModelO3, 3000, 1024, 0, 2500, 2000), "usage", map[string]any{
			"input_tokens": 3000.0, "output_tokens": 2500.0, "total_tokens": 5500.0,
			"output_tokens_details": map[string]any{"reasoning_tokens": 2000.0}}},
		// 5000 in total - 3000 read - 1000 written = 1000 uncached
		{"anthropic: input excludes cache reads and writes", mk(ModelSonnet45, 5000, 3000, 1000, 700, 0), "usage", map[string]any{
			"input_tokens": 1000.0, "cache_read_input_tokens": 3000.0, "cache_creation_input_tokens": 1000.0, "output_tokens": 700.0}},
		// candidates 900 - 400 thoughts = 500
		{"gemini: candidates exclude thoughts", mk(ModelGeminiFlash, 4000, 2000, 0, 900, 400), "usageMetadata", map[string]any{
			"promptTokenCount": 4000.0, "cachedContentTokenCount": 2000.0, "candidatesTokenCount": 500.0,
			"thoughtsTokenCount": 400.0, "totalTokenCount": 4900.0}},
		// 6000 - 4000 - 1500 = 500
		{"bedrock: inputTokens excludes cache", mk(ModelBedrockClaude, 6000, 4000, 1500, 300, 0), "usage", map[string]any{
			"inputTokens": 500.0, "cacheReadInputTokens": 4000.0, "cacheWriteInputTokens": 1500.0, "outputTokens": 300.0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := nativeItem(&tc.call)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			u, _ := m[tc.key].(map[string]any)
			for k, want := range tc.usage {
				if sub, ok := want.(map[string]any); ok {
					got, _ := u[k].(map[string]any)
					for sk, sv := range sub {
						if got[sk] != sv {
							t.Errorf("%s.%s.%s = %v, want %v", tc.key, k, sk, got[sk], sv)
						}
					}
					continue
				}
				if u[k] != want {
					t.Errorf("%s.%s = %v, want %v", tc.key, k, u[k], want)
				}
			}
			for _, canonical := range []string{"input_tokens", "output_tokens", "cache_read_input_tokens"} {
				if _, ok := m[canonical]; ok {
					t.Errorf("envelope also carries canonical %s", canonical)
				}
			}
			// The collector's decoder maps it back to the canonical counts.
			ev, err := ingest.DecodeUsage(b, at.Add(time.Hour))
			if err != nil {
				t.Fatalf("collector rejects it: %v\n%s", err, b)
			}
			e := tc.call.Event
			if ev.InputTokens != e.InputTokens || ev.CacheReadInputTokens != e.CacheReadInputTokens ||
				ev.CacheWriteInputTokens != e.CacheWriteInputTokens || ev.OutputTokens != e.OutputTokens || ev.ReasoningTokens != e.ReasoningTokens {
				t.Errorf("decoded %+v, sent %+v", ev, e)
			}
		})
	}
}
