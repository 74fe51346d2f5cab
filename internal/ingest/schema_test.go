package ingest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	json "github.com/segmentio/encoding/json"
)

// The published JSON Schemas (schemas/*.json) must accept what the decoders
// produce and reject what they reject for reasons a schema can express.

func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	path := filepath.Join("..", "..", "schemas", name)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(name, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validDoc(t *testing.T, s *jsonschema.Schema, b []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(v)
}

func TestUsageSchema(t *testing.T) {
	s := compileSchema(t, "usage_event.v1.json")
	for _, seed := range usageSeeds[:4] {
		ev, err := DecodeUsage([]byte(seed), now)
		if err != nil {
			continue // seeds without tenant etc.
		}
		b, _ := json.Marshal(&ev)
		if err := validDoc(t, s, b); err != nil {
			t.Errorf("canonical output %s rejected by schema: %v", b, err)
		}
	}
	full := `{"event_id":"e","event_time":"2026-11-28T10:00:00.123Z","tenant":"acme","provider":"anthropic","model":"claude-sonnet-4-5",
		"operation":"chat","service_tier":"batch","region":"us-east-1","input_tokens":4050,"cache_read_input_tokens":3000,
		"cache_write_input_tokens":1000,"cache_write_1h_input_tokens":600,"output_tokens":503,"reasoning_tokens":0,
		"units":{"web_searches":2},"workflow":"w","prompt_template":"p","prompt_version":"3","user_id":"u","team":"t","application":"a",
		"environment":"prod","agent_name":"ag","trace_id":"tr","span_id":"sp","conversation_id":"c","session_id":"s",
		"attributes":{"k":"v"},"reported_cost":{"amount":"0.0123","currency":"USD"}}`
	ev, err := DecodeUsage([]byte(full), now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(&ev)
	if err := validDoc(t, s, b); err != nil {
		t.Errorf("every field: %v", err)
	}
	for name, doc := range map[string]string{
		"unknown field":   `{"event_id":"e","event_time":"2026-11-28T10:00:00Z","tenant":"acme","provider":"p","model":"m","input_tokens":1,"output_tokens":1,"input_token":1}`,
		"negative tokens": `{"event_id":"e","event_time":"2026-11-28T10:00:00Z","tenant":"acme","provider":"p","model":"m","input_tokens":-1,"output_tokens":1}`,
		"float cost":      `{"event_id":"e","event_time":"2026-11-28T10:00:00Z","tenant":"acme","provider":"p","model":"m","input_tokens":1,"output_tokens":1,"reported_cost":{"amount":0.1,"currency":"USD"}}`,
		"bad time":        `{"event_id":"e","event_time":"yesterday","tenant":"acme","provider":"p","model":"m","input_tokens":1,"output_tokens":1}`,
		"no model":        `{"event_id":"e","event_time":"2026-11-28T10:00:00Z","tenant":"acme","provider":"p","input_tokens":1,"output_tokens":1}`,
		"bad tier":        `{"event_id":"e","event_time":"2026-11-28T10:00:00Z","tenant":"acme","provider":"p","model":"m","input_tokens":1,"output_tokens":1,"service_tier":"gold"}`,
	} {
		if validDoc(t, s, []byte(doc)) == nil {
			t.Errorf("%s: schema accepted %s", name, doc)
		}
		// The decoder reads a JSON number amount exactly from its digits
		// (never through a float), so it tolerates what the schema forbids.
		if _, err := DecodeUsage([]byte(doc), now); err == nil && name != "float cost" {
			t.Errorf("%s: decoder accepted %s", name, doc)
		}
	}
}

func TestOutcomeSchema(t *testing.T) {
	s := compileSchema(t, "outcome_event.v1.json")
	ev, err := DecodeOutcome([]byte(`{"outcome_id":"o","event_time":"2026-11-28T10:00:00Z","tenant":"acme","workflow":"w","outcome_type":"ticket_resolved",
		"value":{"amount":"12.50","currency":"HKD"},"trace_id":"t","conversation_id":"c","attributes":{"k":"v"}}`), now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(&ev)
	if err := validDoc(t, s, b); err != nil {
		t.Errorf("canonical outcome %s rejected: %v", b, err)
	}
	if validDoc(t, s, []byte(`{"outcome_id":"o","event_time":"2026-11-28T10:00:00Z","tenant":"acme","workflow":"w","outcome_type":"t","count":0}`)) == nil {
		t.Error("count 0 accepted")
	}
}
