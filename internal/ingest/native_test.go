package ingest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// base is the canonical part every provider-native case shares.
const base = `"event_id":"ev-1","event_time":"2026-11-28T10:15:30.123Z","tenant":"acme","workflow":"support-copilot",`

func baseEvent(provider, model string) event.UsageEvent {
	return event.UsageEvent{EventID: "ev-1", EventTime: time.Date(2026, 11, 28, 10, 15, 30, 123_000_000, time.UTC),
		Tenant: "acme", Workflow: "support-copilot", Provider: provider, Model: model}
}

func TestProviderNativeShapes(t *testing.T) {
	type tc struct {
		name string
		body string
		want func() event.UsageEvent
	}
	cases := []tc{
		{
			name: "OpenAI Chat Completions: prompt_tokens already include cached_tokens",
			body: `{` + base + `"provider":"openai","model":"gpt-4o","usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
				"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},
				"completion_tokens_details":{"reasoning_tokens":192,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`,
			want: func() event.UsageEvent {
				e := baseEvent("openai", "gpt-4o")
				e.InputTokens, e.CacheReadInputTokens, e.OutputTokens, e.ReasoningTokens = 2006, 1920, 300, 192
				return e
			},
		},
		{
			name: "OpenAI Responses: input_tokens include cached, output include reasoning",
			body: `{` + base + `"provider":"openai","model":"o4-mini","usage":{"input_tokens":328,"input_tokens_details":{"cached_tokens":128},
				"output_tokens":52,"output_tokens_details":{"reasoning_tokens":20},"total_tokens":380}}`,
			want: func() event.UsageEvent {
				e := baseEvent("openai", "o4-mini")
				e.InputTokens, e.CacheReadInputTokens, e.OutputTokens, e.ReasoningTokens = 328, 128, 52, 20
				return e
			},
		},
		{
			name: "Anthropic Messages: input_tokens exclude cache reads and writes",
			body: `{` + base + `"provider":"anthropic","model":"claude-sonnet-4-5","usage":{"input_tokens":50,"cache_creation_input_tokens":1000,
				"cache_read_input_tokens":3000,"cache_creation":{"ephemeral_5m_input_tokens":400,"ephemeral_1h_input_tokens":600},
				"output_tokens":503,"service_tier":"standard","server_tool_use":{"web_search_requests":2}}}`,
			want: func() event.UsageEvent {
				e := baseEvent("anthropic", "claude-sonnet-4-5")
				// input = 50 uncached + 3000 read + 1000 written = 4050
				e.InputTokens, e.CacheReadInputTokens, e.CacheWriteInputTokens, e.CacheWrite1hInputTokens = 4050, 3000, 1000, 600
				e.OutputTokens, e.ServiceTier = 503, "standard"
				e.Units.WebSearches = 2
				return e
			},
		},
		{
			name: "Anthropic without cache fields reads like Responses (same numbers)",
			body: `{` + base + `"provider":"anthropic","model":"claude-haiku-4-5","usage":{"input_tokens":12,"output_tokens":6}}`,
			want: func() event.UsageEvent {
				e := baseEvent("anthropic", "claude-haiku-4-5")
				e.InputTokens, e.OutputTokens = 12, 6
				return e
			},
		},
		{
			name: "Gemini usageMetadata: candidates exclude thoughts; tool-use prompt is input",
			body: `{` + base + `"provider":"gcp.gemini","model":"gemini-2.5-pro","usageMetadata":{"promptTokenCount":1200,"candidatesTokenCount":300,
				"thoughtsTokenCount":700,"cachedContentTokenCount":1000,"toolUsePromptTokenCount":50,"totalTokenCount":2250}}`,
			want: func() event.UsageEvent {
				e := baseEvent("gcp.gemini", "gemini-2.5-pro")
				// input = 1200 prompt + 50 tool-use prompt = 1250; output = 300 + 700 thoughts = 1000; 1250+1000 = 2250 total
				e.InputTokens, e.CacheReadInputTokens, e.OutputTokens, e.ReasoningTokens = 1250, 1000, 1000, 700
				return e
			},
		},
		{
			name: "Gemini Python SDK snake_case usage_metadata; provider alias gemini",
			body: `{` + base + `"provider":"gemini","model":"gemini-2.5-flash","usage_metadata":{"prompt_token_count":100,"candidates_token_count":20,"thoughts_token_count":5,"total_token_count":125}}`,
			want: func() event.UsageEvent {
				e := baseEvent("gcp.gemini", "gemini-2.5-flash")
				e.InputTokens, e.OutputTokens, e.ReasoningTokens = 100, 25, 5 // 20 + 5 thoughts
				return e
			},
		},
		{
			name: "Bedrock Converse: inputTokens exclude cache reads and writes",
			body: `{` + base + `"provider":"aws.bedrock","model":"anthropic.claude-3-7-sonnet","usage":{"inputTokens":20,"outputTokens":100,"totalTokens":5120,
				"cacheReadInputTokens":4000,"cacheWriteInputTokens":1000}}`,
			want: func() event.UsageEvent {
				e := baseEvent("aws.bedrock", "anthropic.claude-3-7-sonnet")
				// input = 20 + 4000 + 1000 = 5020; 5020 + 100 = 5120 total
				e.InputTokens, e.CacheReadInputTokens, e.CacheWriteInputTokens, e.OutputTokens = 5020, 4000, 1000, 100
				return e
			},
		},
		{
			name: "whole OpenAI Chat reply pasted as response: id, model, created and tier come from it",
			body: `{"tenant":"acme","workflow":"support-copilot","provider":"openai","response":{"id":"chatcmpl-abc","object":"chat.completion",
				"created":1764324930,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_1",
				"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
				"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29}}}`,
			want: func() event.UsageEvent {
				// created 1764324930 = 2025-11-28T10:15:30Z
				return event.UsageEvent{EventID: "chatcmpl-abc", EventTime: time.Date(2025, 11, 28, 10, 15, 30, 0, time.UTC), Tenant: "acme",
					Workflow: "support-copilot", Provider: "openai", Model: "gpt-4o-2024-08-06", ServiceTier: "standard",
					InputTokens: 19, OutputTokens: 10}
			},
		},
		{
			name: "whole Anthropic reply pasted as response",
			body: `{"event_time":"2026-11-28T10:15:30.123Z","tenant":"acme","workflow":"support-copilot","provider":"anthropic","response":{"id":"msg_01X","type":"message","role":"assistant",
				"model":"claude-sonnet-4-5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn",
				"usage":{"input_tokens":10,"cache_read_input_tokens":90,"cache_creation_input_tokens":0,"output_tokens":7}}}`,
			want: func() event.UsageEvent {
				e := baseEvent("anthropic", "claude-sonnet-4-5")
				e.EventID = "msg_01X"
				e.InputTokens, e.CacheReadInputTokens, e.OutputTokens = 100, 90, 7 // 10 + 90
				return e
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeUsage([]byte(c.body), now)
			if err != nil {
				t.Fatal(err)
			}
			if want := c.want(); !reflect.DeepEqual(got, want) {
				t.Errorf("\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestProviderNativeRejections(t *testing.T) {
	cases := []struct {
		name, body, field string
	}{
		{"canonical tokens and usage object", `{` + base + `"provider":"openai","model":"m","input_tokens":5,"usage":{"prompt_tokens":5,"completion_tokens":1}}`, "usage"},
		{"mixed shapes", `{` + base + `"provider":"openai","model":"m","usage":{"prompt_tokens":5,"inputTokens":1}}`, "usage"},
		{"unknown shape", `{` + base + `"provider":"openai","model":"m","usage":{"tokens":5}}`, "usage"},
		{"negative anthropic input", `{` + base + `"provider":"anthropic","model":"m","usage":{"input_tokens":-5,"cache_read_input_tokens":10,"output_tokens":1}}`, "usage.input_tokens"},
		// OpenAI counts cached inside prompt_tokens, so more cached than prompt is inconsistent.
		{"cached exceeds prompt", `{` + base + `"provider":"openai","model":"m","usage":{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":9}}}`, "cache_read_input_tokens"},
		{"two usage objects", `{` + base + `"provider":"openai","model":"m","usage":{"prompt_tokens":5},"usageMetadata":{"promptTokenCount":1}}`, "usageMetadata"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeUsage([]byte(c.body), now)
			var ie *ItemError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want *ItemError", err)
			}
			found := false
			for _, p := range ie.Problems {
				found = found || p.Field == c.field
			}
			if !found {
				t.Errorf("problems %+v lack field %q", ie.Problems, c.field)
			}
		})
	}
}

func TestDecodeUsageCanonical(t *testing.T) {
	body := `{"event_id":"e","event_time":"2026-11-28T18:15:30.999999+08:00","tenant":"acme","provider":"XAI","model":"grok-3",
		"service_tier":"default","input_tokens":10,"output_tokens":3,"units":{"images":2},"attributes":{"k":"v"},
		"reported_cost":{"amount":"0.000150","currency":"USD"}}`
	got, err := DecodeUsage([]byte(body), now)
	if err != nil {
		t.Fatal(err)
	}
	// 18:15:30.999999+08:00 = 10:15:30.999Z after cutting to ms; XAI -> x_ai; default -> standard.
	if got.EventTime != time.Date(2026, 11, 28, 10, 15, 30, 999_000_000, time.UTC) || got.Provider != "x_ai" || got.ServiceTier != "standard" ||
		got.Units.Images != 2 || got.Attributes["k"] != "v" || got.ReportedCost.Amount.String() != "0.00015" {
		t.Errorf("got %+v", got)
	}
	for name, c := range map[string]struct{ body, reason, field string }{
		"no tenant on the Kafka path":  {`{"event_id":"e","event_time":"2026-11-28T10:00:00Z","provider":"p","model":"m","input_tokens":1,"output_tokens":1}`, ReasonInvalidField, "tenant"},
		"typo":                         {`{"event_id":"e","event_time":"2026-11-28T10:00:00Z","tenant":"a","provider":"p","model":"m","input_token":1}`, ReasonUnknownField, "input_token"},
		"string tokens":                {`{"event_id":"e","event_time":"2026-11-28T10:00:00Z","tenant":"a","provider":"p","model":"m","input_tokens":"1"}`, ReasonInvalidField, "input_tokens"},
		"bad time":                     {`{"event_id":"e","event_time":"yesterday","tenant":"a","provider":"p","model":"m"}`, ReasonInvalidField, "event_time"},
		"no event_time, none invented": {`{"event_id":"e","tenant":"a","provider":"p","model":"m","input_tokens":1,"output_tokens":1}`, ReasonInvalidField, "event_time"},
		"not an object":                {`[1,2]`, ReasonInvalidJSON, ""},
		"trailing data":                {`{"event_id":"e"} {}`, ReasonInvalidJSON, ""},
		"far future":                   {`{"event_id":"e","event_time":"2026-12-28T10:00:00Z","tenant":"a","provider":"p","model":"m"}`, ReasonInvalidField, "event_time"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeUsage([]byte(c.body), now)
			var ie *ItemError
			if !errors.As(err, &ie) || ie.Reason != c.reason {
				t.Fatalf("err = %v, want reason %s", err, c.reason)
			}
			if c.field != "" && (len(ie.Problems) == 0 || ie.Problems[0].Field != c.field) {
				t.Errorf("problems %+v, want field %s", ie.Problems, c.field)
			}
		})
	}
}

func TestSplitBodyFormats(t *testing.T) {
	ev := func(id string) string {
		return `{"event_id":"` + id + `","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"m","input_tokens":1,"output_tokens":1}`
	}
	cases := []struct {
		name   string
		ct     string
		body   string
		ids    []string
		errIdx []int
	}{
		{"object", "application/json", ev("a"), []string{"a"}, nil},
		{"array", "application/json; charset=utf-8", "[" + ev("a") + "," + ev("b") + "]", []string{"a", "b"}, nil},
		{"concatenated objects as json", "application/json", ev("a") + "\n" + ev("b"), []string{"a", "b"}, nil},
		{"ndjson with blank and broken line", "application/x-ndjson", ev("a") + "\n\n{broken\n" + ev("c") + "\n", []string{"a", "", "c"}, []int{1}},
		{"cloudevent", "application/cloudevents+json", `{"specversion":"1.0","id":"ce-1","source":"s","type":"t","time":"2026-11-28T09:00:00Z","data":{"provider":"openai","model":"m","input_tokens":1,"output_tokens":1}}`, []string{"ce-1"}, nil},
		{"cloudevent batch, one bad specversion", "application/cloudevents-batch+json", `[{"specversion":"1.0","id":"x","source":"s","type":"t","data":` + ev("a") + `},{"specversion":"0.3","id":"y","source":"s","type":"t","data":{}}]`, []string{"a", ""}, []int{1}},
		{"cloudevent data_base64", "application/cloudevents+json", `{"specversion":"1.0","id":"ce-2","source":"s","type":"t","time":"2026-11-28T09:00:00Z","data_base64":"eyJwcm92aWRlciI6Im9wZW5haSIsIm1vZGVsIjoibSJ9"}`, []string{"ce-2"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := FormatFor(c.ct)
			if err != nil {
				t.Fatal(err)
			}
			items, err := SplitBody(f, []byte(c.body), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != len(c.ids) {
				t.Fatalf("%d items, want %d", len(items), len(c.ids))
			}
			var bad []int
			for i, it := range items {
				var ev event.UsageEvent
				err := DecodeUsageItem(it, Options{Now: now, Tenant: "acme"}, &ev)
				if err != nil {
					bad = append(bad, i)
					continue
				}
				if ev.EventID != c.ids[i] {
					t.Errorf("item %d id %q, want %q", i, ev.EventID, c.ids[i])
				}
			}
			if !reflect.DeepEqual(bad, c.errIdx) {
				t.Errorf("rejected items %v, want %v", bad, c.errIdx)
			}
		})
	}
	if _, err := FormatFor("text/csv"); !errors.Is(err, ErrUnsupportedMediaType) {
		t.Errorf("text/csv: %v", err)
	}
	if _, err := SplitBody(FormatJSON, []byte("["+ev("a")+","+ev("b")+"]"), 1); !errors.Is(err, ErrTooManyItems) {
		t.Errorf("limit: %v", err)
	}
	var be *BodyError
	if _, err := SplitBody(FormatJSON, []byte(`[{"a":1},`), 10); !errors.As(err, &be) {
		t.Errorf("truncated: %v", err)
	}
}

func TestDecodeOutcome(t *testing.T) {
	got, err := DecodeOutcome([]byte(`{"outcome_id":"o1","event_time":"2026-11-28T10:00:00.0001Z","tenant":"acme","workflow":"w","outcome_type":"ticket_resolved","count":3}`), now)
	if err != nil {
		t.Fatal(err)
	}
	want := event.OutcomeEvent{OutcomeID: "o1", EventTime: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), Tenant: "acme", Workflow: "w", OutcomeType: "ticket_resolved", Count: 3}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	if _, err := DecodeOutcome([]byte(`{"outcome_id":"o1","event_time":"2026-11-28T10:00:00Z","tenant":"acme","workflow":"w","outcome_type":"t","count":0}`), now); err == nil ||
		!strings.Contains(err.Error(), "count") {
		t.Errorf("count 0: %v", err)
	}
	b, _ := json.Marshal(want)
	if again, err := DecodeOutcome(b, now); err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("round trip: %v %+v", err, again)
	}
}
