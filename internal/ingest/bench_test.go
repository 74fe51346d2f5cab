package ingest

import (
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

const benchEvent = `{"event_id":"evt-00000042","event_time":"2026-11-28T10:15:30.123Z","provider":"openai","model":"gpt-4o-2024-08-06",` +
	`"operation":"chat","input_tokens":1242,"cache_read_input_tokens":400,"output_tokens":300,"reasoning_tokens":64,` +
	`"workflow":"support-copilot","user_id":"user-42","application":"support-bot","environment":"prod",` +
	`"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}`

// BenchmarkDecodeUsageItem: one canonical item as the collector decodes it
// (borrowed strings, tenant from the token).
func BenchmarkDecodeUsageItem(b *testing.B) {
	it := Item{Raw: []byte(benchEvent)}
	o := Options{Now: now, Tenant: "acme", BorrowInput: true}
	var ev event.UsageEvent
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent)))
	for b.Loop() {
		if err := DecodeUsageItem(it, o, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeUsageKafka: one record value as the processor decodes it (copied strings).
func BenchmarkDecodeUsageKafka(b *testing.B) {
	rec := []byte(benchEvent[:len(benchEvent)-1] + `,"tenant":"acme"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeUsage(rec, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapSpan: one GenAI span (11 attributes) to a usage event.
func BenchmarkMapSpan(b *testing.B) {
	td := oneSpan(b, map[string]any{"service.name": "support-bot", "deployment.environment.name": "prod"}, map[string]any{
		"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
		"gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 1242, "gen_ai.usage.cache_read.input_tokens": 400,
		"gen_ai.usage.output_tokens": 300, "gen_ai.usage.reasoning.output_tokens": 64, "gen_ai.workflow.name": "support-copilot",
		"user.id": "user-42", "http.response.status_code": 200})
	m := NewSpanMapper(DefaultAttributeSources())
	b.ReportAllocs()
	var sink int64
	for b.Loop() {
		m.MapTraces(td, "acme", now, func(r *SpanResult) { sink += r.Event.InputTokens })
	}
	_ = sink
}

// BenchmarkDecodeUsageKafkaGeneral: the same record through the general
// decoder alone (the canonical fast path off), for comparison.
func BenchmarkDecodeUsageKafkaGeneral(b *testing.B) {
	rec := []byte(benchEvent[:len(benchEvent)-1] + `,"tenant":"acme"}`)
	b.ReportAllocs()
	var ev event.UsageEvent
	for b.Loop() {
		if err := decodeUsageItemWith(rec, Options{Now: now}, itemDefaults{}, &ev, false); err != nil {
			b.Fatal(err)
		}
	}
}
