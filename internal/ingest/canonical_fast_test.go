package ingest

import (
	"bytes"
	"errors"
	"math/bits"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// The canonical fast path must never change a result: for any input, the
// event and the error (reason, field paths, wording) are those of the
// general decoder alone.

var fastSeeds = []string{
	benchEvent,
	benchEvent[:len(benchEvent)-1] + `,"tenant":"acme"}`,
	`{"event_id":"0b7c1f9e","event_time":"2026-11-20T03:00:00.001Z","tenant":"acme","provider":"anthropic","model":"claude-haiku-4-5","operation":"chat",` +
		`"input_tokens":3100,"cache_read_input_tokens":2560,"output_tokens":280,"units":{},"prompt_template":"support-answer","prompt_version":"v3",` +
		`"user_id":"agent-001","application":"support-copilot","environment":"prod","trace_id":"4bf9","span_id":"00f0","conversation_id":"conv-1234",` +
		`"attributes":{"deployment.environment":"prod","service.name":"support-copilot"}}`,
	` {"event_id":"e","event_time":"2024-02-29T23:59:59.123456789Z","tenant":"t","provider":"OpenAI","model":"m","service_tier":"Default","region":"eu",` +
		`"input_tokens":0,"cache_write_input_tokens":7,"cache_write_1h_input_tokens":3,"output_tokens":9,"reasoning_tokens":2,` +
		`"units":{"images":1,"audio_seconds":2,"requests":3,"tool_calls":4,"web_searches":5},"workflow":"w","team":"x","agent_name":"a",` +
		`"session_id":"s","attributes":{}} ` + "\n",
	`{"event_id":"é","event_time":"2026-11-28T10:00:00Z","tenant":"acme","provider":"openai","model":"m","input_tokens":1,"output_tokens":1,"attributes":{"k":"a","l":"b"}}`,
	// Each of these leaves the fast path.
	`{"event_id":"é","event_time":"2026-11-28T10:00:00Z","tenant":"acme","provider":"openai","model":"m","input_tokens":1,"output_tokens":1,"attributes":{"k":"a","k":"b"}}`,
	`{"event_id":"e","event_time":"2026-11-28T10:00:00+08:00","tenant":"acme","provider":"openai","model":"m"}`,
	`{"event_id":"e","event_time":"2026-02-30T10:00:00Z","tenant":"acme","provider":"openai","model":"m"}`,
	`{"event_id":"e\u0041","tenant":"acme","input_tokens":-1}`,
	`{"event_id":"e","event_id":"f"}`,
	`{"event_id":null,"input_tokens":1.0,"output_tokens":1e2}`,
	`{"event_id":"e","Input_Tokens":5}`,
	`{"event_id":"e","input_tokens":"5"}`,
	`{"event_id":"e","input_tokens":0123}`,
	`{"event_id":"e","input_tokens":99999999999999999999}`,
	`{"event_id":"e","reported_cost":{"amount":"1.5","currency":"USD"}}`,
	`{"event_id":"e","attributes":{"k":1}}`,
	`{"event_id":"e","attributes":null,"units":null}`,
	`{"event_time":"0000-01-01T00:00:00Z"}`, `{"event_time":"2026-11-28T10:00:00.Z"}`, `{"event_time":"2026-11-28T10:00:00.1234567890Z"}`,
	`{"event_time":"2026-11-28T24:00:00Z"}`, `{"event_time":"2026-11-28T10:00:60Z"}`, `{"event_time":"2026-11-28t10:00:00z"}`,
	`{"event_time":"2026-13-28T10:00:00Z"}`, `{"event_time":"2100-02-29T10:00:00Z"}`, `{"event_time":"+026-11-28T10:00:00Z"}`,
	`{"event_id":"e"} x`, `{"event_id":"e",}`, `{"event_id" "e"}`, "{\"event_id\":\"\xff\"}",
}

func FuzzCanonicalFastMatchesGeneral(f *testing.F) {
	for _, s := range append(fastSeeds, usageSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		compareFastGeneral(t, b)
	})
}

func compareFastGeneral(t *testing.T, b []byte) {
	t.Helper()
	// The decoders themselves: whatever the fast path accepts, the general
	// decoder accepts with the same fields.
	var fast event.UsageEvent
	if decodeCanonical(bytes.TrimSpace(b), false, &fast) {
		var gen event.UsageEvent
		d := itemDefaults{}
		problems, err := decodeUsageGeneral(b, Options{Now: now}, &d, &gen)
		if err != nil || problems != nil {
			t.Fatalf("fast path accepted %q, general decoder: %v %v", b, err, problems)
		}
		if !fast.EventTime.Equal(gen.EventTime) {
			t.Fatalf("%q: event_time fast %v, general %v", b, fast.EventTime, gen.EventTime)
		}
		fast.EventTime = gen.EventTime
		if !reflect.DeepEqual(fast, gen) {
			t.Fatalf("%q:\nfast    %+v\ngeneral %+v", b, fast, gen)
		}
	}
	// And the whole item decoding, on the Kafka path and the collector's
	// (with and without a CloudEvent envelope's id and time as defaults).
	ce := itemDefaults{ID: "ce-1", Time: now.Add(-time.Hour + 1234567)}
	for _, c := range []struct {
		o Options
		d itemDefaults
	}{{Options{Now: now}, itemDefaults{}}, {Options{Now: now, Tenant: "acme", BorrowInput: true}, itemDefaults{}},
		{Options{Now: now, Tenant: "acme", BorrowInput: true}, ce}} {
		var withFast, without event.UsageEvent
		errFast := decodeUsageItemWith(b, c.o, c.d, &withFast, true)
		errGen := decodeUsageItemWith(b, c.o, c.d, &without, false)
		if !reflect.DeepEqual(errFast, errGen) {
			t.Fatalf("%q (%+v): error with fast path %v, without %v", b, c, errFast, errGen)
		}
		if !reflect.DeepEqual(withFast, without) {
			t.Fatalf("%q (%+v):\nwith fast path %+v\nwithout        %+v", b, c, withFast, without)
		}
	}
}

func TestCanonicalFastMatchesGeneral(t *testing.T) {
	for _, s := range append(fastSeeds, usageSeeds...) {
		compareFastGeneral(t, []byte(s))
	}
}

// The fast path is really taken for canonical events (else the differential
// test above would compare the general decoder with itself).
func TestCanonicalFastTaken(t *testing.T) {
	for i, s := range fastSeeds[:5] {
		var ev event.UsageEvent
		if !decodeCanonical(bytes.TrimSpace([]byte(s)), false, &ev) {
			t.Errorf("seed %d: fast path not taken", i)
		}
	}
	for i, s := range fastSeeds[5:] {
		var ev event.UsageEvent
		if decodeCanonical(bytes.TrimSpace([]byte(s)), false, &ev) {
			t.Errorf("seed %d (%s): fast path taken", i+5, s)
		}
	}
	// Hand-checked fields of seed 3: 2024 is a leap year; 123456789 ns.
	var ev event.UsageEvent
	if !decodeCanonical(bytes.TrimSpace([]byte(fastSeeds[3])), false, &ev) {
		t.Fatal("seed 3 not taken")
	}
	if ev.EventTime.Nanosecond() != 123456789 || ev.EventTime.Day() != 29 || ev.Units.WebSearches != 5 ||
		ev.CacheWrite1hInputTokens != 3 || ev.Attributes == nil || len(ev.Attributes) != 0 || ev.Provider != "OpenAI" {
		t.Errorf("seed 3 decoded as %+v", ev)
	}
	if !decodeCanonical([]byte(fastSeeds[4]), false, &ev) || ev.Attributes["l"] != "b" || ev.EventID != "é" {
		t.Errorf("seed 4 decoded as %+v", ev)
	}
	// A repeated attribute key is refused (item 12 of issue 17: it used to
	// keep the last value, so two different payloads meant the same event).
	err := decodeUsageItem([]byte(fastSeeds[5]), Options{Now: time.Now()}, itemDefaults{}, &ev)
	var ie *ItemError
	if !errors.As(err, &ie) || ie.Reason != ReasonLimit || len(ie.Problems) != 1 || ie.Problems[0].Field != "attributes.k" ||
		!strings.Contains(ie.Problems[0].Reason, "duplicate key") {
		t.Errorf("repeated attribute key: %v", err)
	}
}

// The Kafka path copies: the decoded strings must not change with the input.
func TestCanonicalFastCopies(t *testing.T) {
	b := []byte(fastSeeds[1])
	ev, err := DecodeUsage(b, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'x'
	}
	if ev.EventID != "evt-00000042" || !strings.HasPrefix(ev.TraceID, "4bf92f35") {
		t.Fatalf("decoded strings share the input: %+v", ev)
	}
}

// special8 against the byte-by-byte definition: every byte value in every
// position among plain bytes, and pseudo-random words.
func TestSpecial8(t *testing.T) {
	isSpecial := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }
	check := func(b [8]byte) {
		want := false
		for _, c := range b {
			want = want || isSpecial(c)
		}
		if got := special8(load8(string(b[:]), 0)) != 0; got != want {
			t.Fatalf("%q: special8 %v, want %v", b, got, want)
		}
	}
	for c := range 256 {
		for k := range 8 {
			b := [8]byte{'a', 'Z', '0', ' ', '~', '!', '#', '['}
			b[k] = byte(c)
			check(b)
		}
	}
	x := uint64(0x9E3779B97F4A7C15)
	for range 200000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		var b [8]byte
		for k := range b {
			b[k] = byte(x >> (8 * k))
			if b[k]&0x80 != 0 && x&(1<<k) != 0 {
				b[k] &= 0x7f // mostly ASCII, so the other tests matter
			}
		}
		check(b)
	}
}

// The lowest flagged byte of special8 is the first special byte, wherever
// several special bytes sit in a block.
func TestSpecial8FirstByte(t *testing.T) {
	isSpecial := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }
	vals := []byte{'a', '"', '\\', 0, 0x1f, 0x20, 0x21, 0x7f, 0x80, 0xff, '!', '#', '[', ']', 0x01}
	x := uint64(88172645463325252)
	for range 300000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		var b [8]byte
		first := -1
		for k := range b {
			b[k] = vals[(x>>(4*k))%uint64(len(vals))]
			if first < 0 && isSpecial(b[k]) {
				first = k
			}
		}
		m := special8(load8(string(b[:]), 0))
		if first < 0 {
			if m != 0 {
				t.Fatalf("%q: flagged %#x", b, m)
			}
			continue
		}
		if got := bits.TrailingZeros64(m) / 8; got != first {
			t.Fatalf("%q: first flagged byte %d, first special %d", b, got, first)
		}
	}
}
