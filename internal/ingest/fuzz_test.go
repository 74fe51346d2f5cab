package ingest

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// Fuzz targets: no input may panic, and whatever a decoder accepts must be a
// valid canonical event (the same Validate the processor runs).

var usageSeeds = []string{
	`{"event_id":"e","event_time":"2026-11-28T10:00:00Z","tenant":"acme","provider":"openai","model":"m","input_tokens":10,"cache_read_input_tokens":5,"output_tokens":3,"reasoning_tokens":1}`,
	`{"event_id":"e","event_time":"2026-11-28T10:00:00Z","tenant":"acme","provider":"anthropic","model":"m","usage":{"input_tokens":5,"cache_read_input_tokens":10,"output_tokens":1}}`,
	`{"event_id":"e","event_time":"2026-11-28T10:00:00Z","tenant":"acme","provider":"gemini","model":"m","usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":1}}`,
	`{"tenant":"acme","provider":"openai","response":{"id":"x","created":1764324930,"model":"m","usage":{"prompt_tokens":5,"completion_tokens":1}}}`,
	`{"event_id":"e","usage":{"inputTokens":-1,"outputTokens":1}}`,
	`{"reported_cost":{"amount":"1e400","currency":"USD"}}`,
	`[]`, `null`, `{`, ``,
}

func FuzzDecodeUsage(f *testing.F) {
	for _, s := range usageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeUsage(b, now)
		if err != nil {
			return
		}
		if err := ev.Validate(now); err != nil {
			t.Fatalf("accepted an invalid event: %v", err)
		}
		if ev.EventTime != NormaliseTime(ev.EventTime) {
			t.Fatalf("event_time not normalised: %v", ev.EventTime)
		}
	})
}

func FuzzDecodeOutcome(f *testing.F) {
	f.Add([]byte(`{"outcome_id":"o","event_time":"2026-11-28T10:00:00Z","tenant":"a","workflow":"w","outcome_type":"t","count":2,"value":{"amount":"1.5","currency":"USD"}}`))
	f.Add([]byte(`{"outcome_id":"o","count":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeOutcome(b, now)
		if err == nil {
			if err := ev.Validate(now); err != nil {
				t.Fatalf("accepted an invalid outcome: %v", err)
			}
		}
	})
}

func fuzzBody(f *testing.F, format Format, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := SplitBody(format, b, 100)
		if err != nil {
			return
		}
		if len(items) == 0 || len(items) > 100 {
			t.Fatalf("%d items", len(items))
		}
		for _, it := range items {
			var ev event.UsageEvent
			if err := DecodeUsageItem(it, Options{Now: now, Tenant: "acme"}, &ev); err == nil {
				if ev.Tenant != "acme" {
					t.Fatalf("tenant %q", ev.Tenant)
				}
				if err := ev.Validate(now); err != nil {
					t.Fatalf("accepted an invalid event: %v", err)
				}
			}
		}
	})
}

func FuzzSplitJSON(f *testing.F) {
	fuzzBody(f, FormatJSON, usageSeeds[0], "["+usageSeeds[0]+","+usageSeeds[1]+"]", usageSeeds[0]+usageSeeds[2], "[[]]", "[1]")
}

func FuzzSplitNDJSON(f *testing.F) {
	fuzzBody(f, FormatNDJSON, usageSeeds[0]+"\n"+usageSeeds[1]+"\n\n{x\n", "\r\n\r\n")
}

func FuzzSplitCloudEvents(f *testing.F) {
	ce := `{"specversion":"1.0","id":"ce-1","source":"s","type":"t","time":"2026-11-28T09:00:00Z","data":{"provider":"openai","model":"m","input_tokens":1,"output_tokens":1}}`
	fuzzBody(f, FormatCloudEvent, ce, `{"specversion":"1.0","data_base64":"e30="}`)
}

func FuzzSplitCloudEventsBatch(f *testing.F) {
	ce := `{"specversion":"1.0","id":"ce-1","source":"s","type":"t","time":"2026-11-28T09:00:00Z","data":{"provider":"openai","model":"m","input_tokens":1,"output_tokens":1}}`
	fuzzBody(f, FormatCloudEventBatch, "["+ce+","+ce+"]", "[]", `[{"specversion":"1.0","datacontenttype":"text/xml","data":"x"}]`)
}

func otlpSeed(f *testing.F) ptraceotlp.ExportRequest {
	td := oneSpan(f, map[string]any{"service.name": "svc"}, map[string]any{
		"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10,
		"gen_ai.usage.cache_read.input_tokens": 4, "gen_ai.usage.output_tokens": "3"})
	return ptraceotlp.NewExportRequestFromTraces(td)
}

func fuzzSpans(t *testing.T, req ptraceotlp.ExportRequest) {
	m := NewSpanMapper(DefaultAttributeSources())
	m.MapTraces(req.Traces(), "acme", now, func(r *SpanResult) {
		if r.Skipped || r.Err != nil {
			return
		}
		if err := r.Event.Validate(now); err != nil {
			t.Fatalf("accepted an invalid span: %v", err)
		}
		if r.Event.EventID != r.Event.TraceID+"-"+r.Event.SpanID {
			t.Fatalf("event id %q not derived from trace and span id", r.Event.EventID)
		}
	})
}

func FuzzOTLPProto(f *testing.F) {
	b, _ := otlpSeed(f).MarshalProto()
	f.Add(b)
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckOTLPProtoDepth(b, limits.DefaultMaxDepth) != nil {
			return // refused before decoding, as the collector does
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return
		}
		fuzzSpans(t, req)
	})
}

func FuzzOTLPJSON(f *testing.F) {
	b, _ := otlpSeed(f).MarshalJSON()
	f.Add(b)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"","spanId":"","attributes":[{"key":"gen_ai.usage.input_tokens","value":{"doubleValue":1e300}}]}]}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckDepth(b, limits.DefaultMaxDepth) != nil {
			return // refused before decoding, as the collector does
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalJSON(b); err != nil {
			return
		}
		fuzzSpans(t, req)
	})
}
