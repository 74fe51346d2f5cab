package processor

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/ingest"
)

var decodeSeeds = []string{
	`{"event_id":"e1","event_time":"2026-11-20T03:00:00.001Z","tenant":"acme","provider":"anthropic","model":"claude-haiku-4-5","input_tokens":3100,"cache_read_input_tokens":2560,"output_tokens":280,"units":{"images":2},"attributes":{"service.name":"bot"}}`,
	`{"event_id":"e2","event_time":"2026-11-20T11:00:00.0001234+08:00","tenant":"acme","provider":"Azure_OpenAI","model":"gpt-4o","input_tokens":1,"output_tokens":1,"service_tier":"batch"}`,
	`{"event_id":"e3","event_time":"2026-11-20T03:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1,"reported_cost":{"amount":"0.0100","currency":"USD"}}`,
	`{"event_id":"e4","event_time":"2026-11-20T03:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1,"service_tier":"Priority"}`,
	`{"event_id":"e5","event_time":"2026-11-20T03:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","usage":{"prompt_tokens":10,"completion_tokens":2}}`,
	`{"event_id":"e6","event_time":"2026-11-20T03:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1}}`,
	`{"event_id":"e7","event_time":"2026-11-20T03:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1} {"x":1}`,
	`{"EVENT_ID":"e8","event_time":"2026-11-20T03:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1,"event_id":"e8b"}`,
	`{"event_id":"e9","event_time":"2026-11-20T03:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","input_tokens":1.5,"output_tokens":1}`,
	`{"event_id":"e10","event_time":"2026-11-20T03:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","input_tokens":5,"output_tokens":1,"reasoning_tokens":2}`,
	`{"event_id":"e11","tenant":"acme","provider":"openai","model":"gpt-4o","input_tokens":5,"output_tokens":1,"colour":"red"}`,
	`{"event_id":"e12","event_time":"2026-11-20T03:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","input_tokens":5,"output_tokens":1,"attributes":null,"units":null,"reported_cost":null}`,
	`null`, `[]`, `{}`, ` {"event_id":"e13","event_time":"2026-11-20T03:00:00Z","tenant":"acme","provider":" OpenAI ","model":"x","input_tokens":0,"output_tokens":0}  `,
}

// FuzzDecodeCanonicalMatchesIngest: whatever the fast path accepts,
// ingest.DecodeUsage (the authority) accepts too and decodes identically.
func FuzzDecodeCanonicalMatchesIngest(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeCanonical(b, now)
		if !ok {
			return
		}
		slow, err := ingest.DecodeUsage(b, now)
		if err != nil {
			t.Fatalf("fast path accepted what ingest rejects (%v): %s", err, b)
		}
		fj, _ := json.Marshal(fast)
		sj, _ := json.Marshal(slow)
		if string(fj) != string(sj) || !fast.EventTime.Equal(slow.EventTime) || fast.EventTime.Location() != slow.EventTime.Location() {
			t.Fatalf("fast and ingest decode differ for %s:\nfast   %s\ningest %s", b, fj, sj)
		}
	})
}

func TestDecodeCanonicalTakesTheCommonCase(t *testing.T) {
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	// Seeds 0, 1 (provider alias, +08:00 sub-ms time: normalised like ingest),
	// 2, 11 and 15 are canonical enough; the rest need ingest.
	want := map[int]bool{0: true, 1: true, 2: true, 11: true, 15: true}
	for i, s := range decodeSeeds {
		_, ok := decodeCanonical([]byte(s), now)
		if ok != want[i] {
			t.Errorf("seed %d: fast path %v, want %v: %s", i, ok, want[i], s)
		}
	}
}
