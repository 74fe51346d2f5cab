package ingest

import (
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

var (
	traceID = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID  = pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	// end 2026-11-28T10:00:01.234567891Z -> event_time 10:00:01.234Z
	spanEndTime = time.Date(2026, 11, 28, 10, 0, 1, 234_567_891, time.UTC)
)

const (
	wantTraceHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	wantSpanHex  = "00f067aa0ba902b7"
	wantEventID  = wantTraceHex + "-" + wantSpanHex
)

func oneSpan(t testing.TB, resAttrs, spanAttrs map[string]any) ptrace.Traces {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	if err := rs.Resource().Attributes().FromRaw(resAttrs); err != nil {
		t.Fatal(err)
	}
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(traceID)
	sp.SetSpanID(spanID)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(spanEndTime.Add(-time.Second)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(spanEndTime))
	if err := sp.Attributes().FromRaw(spanAttrs); err != nil {
		t.Fatal(err)
	}
	return td
}

// spanEvent is the identity every mapped span of oneSpan has.
func spanEvent() event.UsageEvent {
	return event.UsageEvent{EventID: wantEventID, EventTime: time.Date(2026, 11, 28, 10, 0, 1, 234_000_000, time.UTC), Tenant: "acme",
		TraceID: wantTraceHex, SpanID: wantSpanHex}
}

func TestSpanAttributeMapping(t *testing.T) {
	cases := []struct {
		name      string
		sources   *AttributeSources
		res, span map[string]any
		want      func(e *event.UsageEvent)
	}{
		{
			name: "current GenAI names",
			res:  map[string]any{"service.name": "support-bot", "deployment.environment.name": "prod"},
			span: map[string]any{"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
				"gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 250,
				"gen_ai.usage.cache_read.input_tokens": 400, "gen_ai.usage.cache_creation.input_tokens": 100,
				"gen_ai.usage.reasoning.output_tokens": 50, "gen_ai.workflow.name": "support-copilot", "gen_ai.prompt.name": "triage-v",
				"gen_ai.agent.name": "triage", "gen_ai.conversation.id": "c-1", "user.id": "u-1", "session.id": "s-1",
				"openai.response.service_tier": "default"},
			want: func(e *event.UsageEvent) {
				e.Provider, e.Model, e.Operation, e.ServiceTier = "openai", "gpt-4o-2024-08-06", "chat", "standard"
				e.InputTokens, e.OutputTokens, e.CacheReadInputTokens, e.CacheWriteInputTokens, e.ReasoningTokens = 1000, 250, 400, 100, 50
				e.Workflow, e.PromptTemplate, e.AgentName, e.ConversationID, e.UserID, e.SessionID = "support-copilot", "triage-v", "triage", "c-1", "u-1", "s-1"
				e.Application, e.Environment = "support-bot", "prod"
			},
		},
		{
			name: "older names: gen_ai.system, prompt/completion tokens, enduser.id, deployment.environment",
			res:  map[string]any{"service.name": "legal", "deployment.environment": "staging"},
			span: map[string]any{"gen_ai.system": "xai", "gen_ai.request.model": "grok-3", "gen_ai.usage.prompt_tokens": 30,
				"gen_ai.usage.completion_tokens": 12, "enduser.id": "u-2"},
			want: func(e *event.UsageEvent) {
				e.Provider, e.Model, e.InputTokens, e.OutputTokens, e.UserID = "x_ai", "grok-3", 30, 12, "u-2"
				e.Application, e.Environment = "legal", "staging"
			},
		},
		{
			name: "older provider value az.ai.openai and alternative usage spellings",
			span: map[string]any{"gen_ai.system": "az.ai.openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 500,
				"gen_ai.usage.cache_read_input_tokens": 200, "gen_ai.usage.cache_creation_input_tokens": 50,
				"gen_ai.usage.output_tokens": 90, "gen_ai.usage.reasoning_tokens": 30},
			want: func(e *event.UsageEvent) {
				e.Provider, e.Model = "azure.ai.openai", "gpt-4o-mini"
				e.InputTokens, e.CacheReadInputTokens, e.CacheWriteInputTokens, e.OutputTokens, e.ReasoningTokens = 500, 200, 50, 90, 30
			},
		},
		{
			name: "cache_write spelling",
			span: map[string]any{"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude", "gen_ai.usage.input_tokens": 10,
				"gen_ai.usage.cache_write.input_tokens": 4, "gen_ai.usage.output_tokens": 1},
			want: func(e *event.UsageEvent) {
				e.Provider, e.Model, e.InputTokens, e.CacheWriteInputTokens, e.OutputTokens = "anthropic", "claude", 10, 4, 1
			},
		},
		{
			name: "current name wins over older one whatever the order; span wins over resource",
			res:  map[string]any{"gen_ai.workflow.name": "from-resource", "deployment.environment.name": "prod", "deployment.environment": "old"},
			span: map[string]any{"gen_ai.system": "old", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
				"gen_ai.usage.prompt_tokens": 1, "gen_ai.usage.input_tokens": 7, "gen_ai.usage.completion_tokens": 1,
				"gen_ai.usage.output_tokens": 3, "gen_ai.workflow.name": "from-span"},
			want: func(e *event.UsageEvent) {
				e.Provider, e.Model, e.InputTokens, e.OutputTokens, e.Workflow, e.Environment = "openai", "gpt-4o", 7, 3, "from-span", "prod"
			},
		},
		{
			name:    "configured sources for workflow, team and prompt version",
			sources: &AttributeSources{Workflow: []string{"app.workflow", "gen_ai.workflow.name"}, Team: []string{"org.team"}, PromptVersion: []string{"prompt.rev"}},
			res:     map[string]any{"org.team": "legal-ops"},
			span: map[string]any{"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1,
				"gen_ai.usage.output_tokens": 1, "gen_ai.workflow.name": "generic", "app.workflow": "contract-review", "prompt.rev": "7"},
			want: func(e *event.UsageEvent) {
				e.Provider, e.Model, e.InputTokens, e.OutputTokens = "openai", "gpt-4o", 1, 1
				e.Workflow, e.Team, e.PromptVersion = "contract-review", "legal-ops", "7"
			},
		},
		{
			name: "token counts sent as double and string",
			span: map[string]any{"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 12.0,
				"gen_ai.usage.output_tokens": "5"},
			want: func(e *event.UsageEvent) {
				e.Provider, e.Model, e.InputTokens, e.OutputTokens = "openai", "gpt-4o", 12, 5
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := DefaultAttributeSources()
			if c.sources != nil {
				src = *c.sources
			}
			m := NewSpanMapper(src)
			var got []SpanResult
			m.MapTraces(oneSpan(t, c.res, c.span), "acme", now, func(r *SpanResult) { got = append(got, *r) })
			if len(got) != 1 {
				t.Fatalf("%d results", len(got))
			}
			if got[0].Err != nil || got[0].Skipped {
				t.Fatalf("err %v skipped %v", got[0].Err, got[0].Skipped)
			}
			want := spanEvent()
			c.want(&want)
			// The attributes map is TestKeptAttributes' business.
			got[0].Event.Attributes = nil
			if !reflect.DeepEqual(got[0].Event, want) {
				t.Errorf("\n got %+v\nwant %+v", got[0].Event, want)
			}
		})
	}
}

func TestSpanRejectionsAndSkips(t *testing.T) {
	m := NewSpanMapper(DefaultAttributeSources())
	cases := []struct {
		name    string
		span    map[string]any
		skipped bool
		field   string
	}{
		{"no usage attributes", map[string]any{"http.request.method": "GET", "gen_ai.request.model": "gpt-4o"}, true, ""},
		{"cache reads exceed input", map[string]any{"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "c",
			"gen_ai.usage.input_tokens": 100, "gen_ai.usage.cache_read.input_tokens": 500, "gen_ai.usage.output_tokens": 1}, false, "cache_read_input_tokens"},
		{"reasoning exceeds output", map[string]any{"gen_ai.provider.name": "openai", "gen_ai.request.model": "o3",
			"gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 10, "gen_ai.usage.reasoning.output_tokens": 11}, false, "reasoning_tokens"},
		{"fractional tokens", map[string]any{"gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
			"gen_ai.usage.input_tokens": 1.5, "gen_ai.usage.output_tokens": 1}, false, "input_tokens"},
		{"no model", map[string]any{"gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 1}, false, "model"},
		{"negative", map[string]any{"gen_ai.provider.name": "openai", "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": -1}, false, "input_tokens"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got SpanResult
			m.MapTraces(oneSpan(t, nil, c.span), "acme", now, func(r *SpanResult) { got = *r })
			if got.Skipped != c.skipped {
				t.Fatalf("skipped = %v", got.Skipped)
			}
			if c.skipped {
				return
			}
			if got.Err == nil || got.Err.Reason != ReasonInvalidUsage {
				t.Fatalf("err = %v", got.Err)
			}
			found := false
			for _, p := range got.Err.Problems {
				found = found || p.Field == c.field
			}
			if !found {
				t.Errorf("problems %+v lack %s", got.Err.Problems, c.field)
			}
		})
	}
}
