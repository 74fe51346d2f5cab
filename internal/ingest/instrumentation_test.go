package ingest

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Attribute sets below are what the pinned libraries (tests/python/
// instrumentations/requirements.txt) put on their spans for the fake
// provider's answers, as printed by their ConsoleSpanExporter.

// fakeSpan is one span of a test trace.
type fakeSpan struct {
	scope, scopeVersion string
	span, parent        byte // span id's last byte; parent 0 = root
	attrs               map[string]any
}

func traceOf(t *testing.T, res map[string]any, spans ...fakeSpan) ptrace.Traces {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	if err := rs.Resource().Attributes().FromRaw(res); err != nil {
		t.Fatal(err)
	}
	for _, f := range spans {
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(f.scope)
		ss.Scope().SetVersion(f.scopeVersion)
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(traceID)
		sp.SetSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, f.span})
		if f.parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, f.parent})
		}
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(spanEndTime))
		if err := sp.Attributes().FromRaw(f.attrs); err != nil {
			t.Fatal(err)
		}
	}
	return td
}

type mapped struct {
	events     []event.UsageEvent
	duplicates int
	skipped    int
	errs       []*ItemError
}

func mapAll(t *testing.T, m *SpanMapper, td ptrace.Traces) mapped {
	t.Helper()
	var out mapped
	m.MapTraces(td, "acme", spanEndTime.Add(time.Hour), func(r *SpanResult) {
		switch {
		case r.Skipped:
			out.skipped++
		case r.Duplicate:
			out.duplicates++
		case r.Err != nil:
			out.errs = append(out.errs, r.Err)
		default:
			out.events = append(out.events, r.Event)
		}
	})
	return out
}

func workflowSpan() fakeSpan {
	return fakeSpan{scope: "instr-test-app", span: 1, attrs: map[string]any{"gen_ai.workflow.name": "support-copilot", "user.id": "u-42"}}
}

func TestInstrumentationCounts(t *testing.T) {
	type want struct {
		input, cacheRead, cacheWrite, output int64
		completeness                         string
		tier                                 string
	}
	cases := []struct {
		name         string
		scope        string
		scopeVersion string
		attrs        map[string]any
		want         want
	}{
		{
			name: "official openai-v2 chat: no cache attribute, cached prompt tokens priced as uncached (upper bound)", scope: "opentelemetry.instrumentation.openai_v2", scopeVersion: "2.4b0",
			attrs: map[string]any{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-2024-08-06",
				"gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.response.id": "chatcmpl-1", "gen_ai.usage.input_tokens": 1200,
				"gen_ai.usage.output_tokens": 300, "openai.response.service_tier": "default"},
			want: want{input: 1200, output: 300, completeness: event.UsageCacheUnreported, tier: "standard"},
		},
		{
			name: "official openai-v2 2.4b0 spans come from util-genai's handler", scope: "opentelemetry.util.genai.handler", scopeVersion: "1.1b0",
			attrs: map[string]any{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-2024-08-06",
				"gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300, "openai.response.service_tier": "default"},
			want: want{input: 1200, output: 300, completeness: event.UsageCacheUnreported, tier: "standard"},
		},
		{
			name: "OpenLIT OpenAI: exact", scope: "openlit.otel.tracing",
			attrs: map[string]any{"telemetry.sdk.name": "openlit", "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
				"gen_ai.request.model": "gpt-4o-2024-08-06", "gen_ai.request.stream": false, "gen_ai.response.id": "chatcmpl-2",
				"openai.response.service_tier": "default", "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300,
				"gen_ai.usage.cost": 0, "gen_ai.usage.cache_read.input_tokens": 1000, "gen_ai.usage.cache_creation.input_tokens": 0},
			want: want{input: 1200, cacheRead: 1000, output: 300, tier: "standard"},
		},
		{
			name: "OpenLIT Anthropic: input_tokens is Anthropic's uncached part; cache reads and writes are added", scope: "openlit.otel.tracing",
			attrs: map[string]any{"telemetry.sdk.name": "openlit", "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
				"gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.request.stream": false, "gen_ai.response.id": "msg_1",
				"gen_ai.usage.input_tokens": 500, "gen_ai.usage.output_tokens": 500, "gen_ai.usage.cache_read.input_tokens": 400,
				"gen_ai.usage.cache_creation.input_tokens": 100},
			want: want{input: 1000, cacheRead: 400, cacheWrite: 100, output: 500},
		},
		{
			name: "OpenLIT Anthropic with realistic caching: accepted, not rejected", scope: "openlit.otel.tracing",
			attrs: map[string]any{"telemetry.sdk.name": "openlit", "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
				"gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.usage.input_tokens": 50, "gen_ai.usage.output_tokens": 20,
				"gen_ai.usage.cache_read.input_tokens": 12000, "gen_ai.usage.cache_creation.input_tokens": 0},
			want: want{input: 12050, cacheRead: 12000, output: 20},
		},
		{
			name: "OpenLIT Anthropic stream: cache counts lost by the library (lower bound)", scope: "openlit.otel.tracing",
			attrs: map[string]any{"telemetry.sdk.name": "openlit", "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
				"gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.request.stream": true, "gen_ai.usage.input_tokens": 500,
				"gen_ai.usage.output_tokens": 500, "gen_ai.usage.cache_read.input_tokens": 0, "gen_ai.usage.cache_creation.input_tokens": 0},
			want: want{input: 500, output: 500, completeness: event.UsageCacheOmitted},
		},
		{
			name: "OpenLIT identified by its span attribute under the app's own tracer", scope: "app",
			attrs: map[string]any{"telemetry.sdk.name": "openlit", "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
				"gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.usage.input_tokens": 500, "gen_ai.usage.output_tokens": 500,
				"gen_ai.usage.cache_read.input_tokens": 400, "gen_ai.usage.cache_creation.input_tokens": 100},
			want: want{input: 1000, cacheRead: 400, cacheWrite: 100, output: 500},
		},
		{
			name: "OpenLLMetry Anthropic: input already includes the cache classes", scope: "opentelemetry.instrumentation.anthropic", scopeVersion: "0.62.4",
			attrs: map[string]any{"gen_ai.provider.name": "anthropic", "gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet-4-5",
				"gen_ai.response.model": "claude-sonnet-4-5-20250929", "gen_ai.response.id": "msg_2", "gen_ai.usage.input_tokens": 1000,
				"gen_ai.usage.output_tokens": 500, "gen_ai.usage.total_tokens": 1500, "gen_ai.usage.cache_read.input_tokens": 400,
				"gen_ai.usage.cache_creation.input_tokens": 100},
			want: want{input: 1000, cacheRead: 400, cacheWrite: 100, output: 500},
		},
		{
			name: "OTel conventions, cache_write spelling, anthropic service tier", scope: "some.other.library",
			attrs: map[string]any{"gen_ai.provider.name": "anthropic", "gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet-4-5",
				"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 500, "gen_ai.usage.cache_read.input_tokens": 400,
				"gen_ai.usage.cache_write.input_tokens": 100, "anthropic.response.service_tier": "priority"},
			want: want{input: 1000, cacheRead: 400, cacheWrite: 100, output: 500, tier: "priority"},
		},
		{
			name: "OTel conventions, no cache attribute: taken as no cache hit", scope: "some.other.library",
			attrs: map[string]any{"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
				"gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300, "openai.response.service_tier": "flex"},
			want: want{input: 1200, output: 300, tier: "flex"},
		},
		{
			name: "a model call with no usage: unmetered, not $0", scope: "opentelemetry.instrumentation.openai_v2",
			attrs: map[string]any{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-2024-08-06",
				"gen_ai.response.id": "chatcmpl-3"},
			want: want{completeness: event.UsageMissing},
		},
	}
	m := NewSpanMapper(DefaultAttributeSources())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			call := fakeSpan{scope: c.scope, scopeVersion: c.scopeVersion, span: 2, parent: 1, attrs: c.attrs}
			got := mapAll(t, m, traceOf(t, map[string]any{"service.name": "instr-test"}, workflowSpan(), call))
			if len(got.errs) > 0 || len(got.events) != 1 || got.skipped != 1 {
				t.Fatalf("events %d skipped %d errs %v", len(got.events), got.skipped, got.errs)
			}
			e := got.events[0]
			g := want{e.InputTokens, e.CacheReadInputTokens, e.CacheWriteInputTokens, e.OutputTokens, e.UsageCompleteness, e.ServiceTier}
			if g != c.want {
				t.Errorf("got  %+v\nwant %+v", g, c.want)
			}
			// Inherited from the workflow span around the call.
			if e.Workflow != "support-copilot" || e.UserID != "u-42" {
				t.Errorf("workflow %q user %q, want inherited support-copilot / u-42", e.Workflow, e.UserID)
			}
			if e.Attributes["service.name"] != "instr-test" {
				t.Errorf("attributes %v lack service.name", e.Attributes)
			}
		})
	}
}

func TestOpenLLMetryAttribution(t *testing.T) {
	m := NewSpanMapper(DefaultAttributeSources())
	wf := fakeSpan{scope: "traceloop.tracer", span: 1, attrs: map[string]any{"traceloop.workflow.name": "support-copilot",
		"traceloop.span.kind": "workflow", "traceloop.entity.name": "support-copilot",
		"traceloop.association.properties.user_id": "u-42", "traceloop.association.properties.team": "cx",
		"traceloop.entity.input": `{"args": []}`}}
	call := fakeSpan{scope: "opentelemetry.instrumentation.openai.v1", scopeVersion: "0.62.4", span: 2, parent: 1, attrs: map[string]any{
		"gen_ai.operation.name": "chat", "traceloop.workflow.name": "support-copilot", "traceloop.association.properties.user_id": "u-42",
		"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-2024-08-06", "gen_ai.response.model": "gpt-4o-2024-08-06",
		"gen_ai.response.id": "chatcmpl-1", "openai.response.service_tier": "default", "gen_ai.usage.total_tokens": 1500,
		"gen_ai.usage.output_tokens": 300, "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.cache_read.input_tokens": 1000,
		"gen_ai.usage.reasoning_tokens": 0}}
	got := mapAll(t, m, traceOf(t, map[string]any{"service.name": "instr-test-traceloop"}, wf, call))
	if len(got.events) != 1 {
		t.Fatalf("events %+v", got)
	}
	e := got.events[0]
	if e.Workflow != "support-copilot" || e.UserID != "u-42" || e.Team != "cx" {
		t.Errorf("workflow %q user %q team %q", e.Workflow, e.UserID, e.Team)
	}
	if e.InputTokens != 1200 || e.CacheReadInputTokens != 1000 || e.OutputTokens != 300 || e.UsageCompleteness != "" {
		t.Errorf("counts %+v", e)
	}
	if e.Attributes["traceloop.association.properties.team"] != "cx" || e.Attributes["traceloop.workflow.name"] != "support-copilot" {
		t.Errorf("attributes %v", e.Attributes)
	}
	if _, ok := e.Attributes["traceloop.entity.input"]; ok {
		t.Errorf("entity input (a prompt) copied into attributes: %v", e.Attributes)
	}
}

func TestOneEventPerModelCall(t *testing.T) {
	anthropicUsage := func(extra map[string]any) map[string]any {
		a := map[string]any{"gen_ai.provider.name": "anthropic", "gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet-4-5",
			"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 500, "gen_ai.usage.cache_read.input_tokens": 400,
			"gen_ai.usage.cache_creation.input_tokens": 100}
		for k, v := range extra {
			a[k] = v
		}
		return a
	}
	t.Run("sibling spans with the same response id: one event, the more complete one", func(t *testing.T) {
		sdk := fakeSpan{scope: "anthropic", span: 2, parent: 1, attrs: map[string]any{"gen_ai.provider.name": "anthropic",
			"gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.response.id": "msg_1",
			"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 500}}
		tl := fakeSpan{scope: "opentelemetry.instrumentation.anthropic", span: 3, parent: 1, attrs: anthropicUsage(map[string]any{"gen_ai.response.id": "msg_1"})}
		got := mapAll(t, NewSpanMapper(DefaultAttributeSources()), traceOf(t, nil, workflowSpan(), sdk, tl))
		if len(got.events) != 1 || got.duplicates != 1 {
			t.Fatalf("events %d duplicates %d", len(got.events), got.duplicates)
		}
		if e := got.events[0]; e.SpanID != "0000000000000003" || e.CacheReadInputTokens != 400 {
			t.Errorf("kept %s with cache reads %d, want span 03 (it reports the cache classes)", e.SpanID, e.CacheReadInputTokens)
		}
	})
	t.Run("parent and child both carrying the usage: one event, the innermost", func(t *testing.T) {
		parent := fakeSpan{scope: "agent.framework", span: 2, parent: 1, attrs: anthropicUsage(nil)}
		child := fakeSpan{scope: "opentelemetry.instrumentation.anthropic", span: 3, parent: 2, attrs: anthropicUsage(nil)}
		got := mapAll(t, NewSpanMapper(DefaultAttributeSources()), traceOf(t, nil, workflowSpan(), parent, child))
		if len(got.events) != 1 || got.duplicates != 1 || got.events[0].SpanID != "0000000000000003" {
			t.Fatalf("events %+v duplicates %d", got.events, got.duplicates)
		}
	})
	t.Run("an agent span summing its two calls: the two calls only", func(t *testing.T) {
		agent := fakeSpan{scope: "agent.framework", span: 2, parent: 1, attrs: anthropicUsage(map[string]any{
			"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 1700, "gen_ai.usage.output_tokens": 800,
			"gen_ai.usage.cache_read.input_tokens": 800, "gen_ai.usage.cache_creation.input_tokens": 200})}
		c1 := fakeSpan{scope: "opentelemetry.instrumentation.anthropic", span: 3, parent: 2, attrs: anthropicUsage(nil)}
		c2 := fakeSpan{scope: "opentelemetry.instrumentation.anthropic", span: 4, parent: 2, attrs: anthropicUsage(map[string]any{
			"gen_ai.usage.input_tokens": 700, "gen_ai.usage.output_tokens": 300})}
		got := mapAll(t, NewSpanMapper(DefaultAttributeSources()), traceOf(t, nil, workflowSpan(), agent, c1, c2))
		if len(got.events) != 2 || got.duplicates != 1 {
			t.Fatalf("events %d duplicates %d", len(got.events), got.duplicates)
		}
		for _, e := range got.events {
			if e.SpanID == "0000000000000002" {
				t.Errorf("the agent's aggregate was kept: %+v", e)
			}
		}
	})
	t.Run("parent and child with different usage: two calls", func(t *testing.T) {
		parent := fakeSpan{scope: "agent.framework", span: 2, parent: 1, attrs: anthropicUsage(map[string]any{"gen_ai.usage.output_tokens": 600})}
		child := fakeSpan{scope: "opentelemetry.instrumentation.anthropic", span: 3, parent: 2, attrs: anthropicUsage(nil)}
		got := mapAll(t, NewSpanMapper(DefaultAttributeSources()), traceOf(t, nil, workflowSpan(), parent, child))
		if len(got.events) != 2 || got.duplicates != 0 {
			t.Fatalf("events %d duplicates %d", len(got.events), got.duplicates)
		}
	})
	t.Run("a later export repeating the call under another span: duplicate; the same span re-sent: not", func(t *testing.T) {
		m := NewSpanMapper(DefaultAttributeSources()).WithCallMemory(NewCallMemory(time.Minute, 100))
		first := mapAll(t, m, traceOf(t, nil, fakeSpan{scope: "x", span: 2, attrs: anthropicUsage(map[string]any{"gen_ai.response.id": "msg_9"})}))
		again := mapAll(t, m, traceOf(t, nil, fakeSpan{scope: "x", span: 2, attrs: anthropicUsage(map[string]any{"gen_ai.response.id": "msg_9"})}))
		other := mapAll(t, m, traceOf(t, nil, fakeSpan{scope: "y", span: 5, attrs: anthropicUsage(map[string]any{"gen_ai.response.id": "msg_9"})}))
		if len(first.events) != 1 || len(again.events) != 1 || len(other.events) != 0 || other.duplicates != 1 {
			t.Fatalf("first %+v again %+v other %+v", first, again, other)
		}
	})
	t.Run("the memory forgets after its window", func(t *testing.T) {
		c := NewCallMemory(time.Minute, 100)
		t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		if _, dup := c.seen("k", "a", t0); dup {
			t.Fatal("first report is a duplicate")
		}
		if _, dup := c.seen("k", "b", t0.Add(30*time.Second)); !dup {
			t.Fatal("second report within the window is not a duplicate")
		}
		if _, dup := c.seen("k", "b", t0.Add(2*time.Minute)); dup {
			t.Fatal("report after the window is a duplicate")
		}
	})
}

func TestAttributeLimits(t *testing.T) {
	attrs := map[string]any{"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1,
		"gen_ai.usage.output_tokens": 1}
	long := make([]byte, maxKeptValueLen+1)
	for i := range long {
		long[i] = 'x'
	}
	attrs["app.long"] = string(long)
	for i := 0; i < 2*maxKeptAttributes; i++ {
		attrs["app.k"+string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
	}
	got := mapAll(t, NewSpanMapper(DefaultAttributeSources()), traceOf(t, nil, fakeSpan{scope: "x", span: 2, attrs: attrs}))
	if len(got.events) != 1 {
		t.Fatalf("%+v", got)
	}
	a := got.events[0].Attributes
	if len(a) != maxKeptAttributes {
		t.Errorf("%d attributes kept, want the limit %d", len(a), maxKeptAttributes)
	}
	if _, ok := a["app.long"]; ok {
		t.Error("a value over the length limit was kept")
	}
}
