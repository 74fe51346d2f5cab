package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	c := Config{OpenAI: UpstreamConfig{URL: "ftp://x"}, BytesPerToken: -1, MaxBodyBytes: 10,
		Keys: []KeyConfig{
			{Name: "a", Key: "short", Tenant: "acme"},
			{Name: "a", Key: "0123456789abcdef", Tenant: ""},
			{Name: "bad name", Key: "0123456789abcdef", Tenant: "acme"},
		}}
	c.ApplyDefaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`openai.url: "ftp://x" is not an http(s) URL`,
		`keys[0].key: must be at least 16 characters`,
		`keys[1].name: "a" is declared twice`,
		`keys[1].tenant: required`,
		`keys[2].name: "bad name" must match`,
		`keys[2].key: the same key is declared twice`,
		`bytes_per_token: must be >= 1`,
		`max_body_bytes: must be >= 1024`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	var ok Config
	ok.Keys = []KeyConfig{{Name: "k", Key: "0123456789abcdef", Tenant: "acme"}}
	ok.ApplyDefaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if err := ok.CheckTenants(func(string) bool { return false }); err == nil || !strings.Contains(err.Error(), `keys[0].tenant: "acme" is not a declared tenant`) {
		t.Errorf("CheckTenants: %v", err)
	}
}

// FuzzStreamScanner: whatever a provider streams, the scanner never panics
// and a usage object it reports is JSON.
func FuzzStreamScanner(f *testing.F) {
	f.Add([]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":5}}\n\n"))
	f.Add([]byte("data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"usage\":null}}\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		whole := append([]byte(nil), b...)
		var s streamScanner
		for len(b) > 0 {
			n := min(len(b), 7)
			s.feed(b[:n])
			b = b[n:]
		}
		s.feed([]byte("\n"))
		if present(s.usage) && !json.Valid(s.usage) {
			t.Fatalf("usage %q is not JSON", s.usage)
		}
		if r := parseReply(whole); present(r.usage) && !json.Valid(r.usage) {
			t.Fatalf("reply usage %q is not JSON", r.usage)
		}
	})
}
