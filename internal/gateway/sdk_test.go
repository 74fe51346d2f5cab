package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// TestOfficialSDKsThroughGateway drives the gateway with the real openai and
// anthropic Python SDKs (tests/python/gateway/clients.py): every call kind
// parses as the SDK expects, streams are relayed, and a denied call raises
// the SDK's own error type with the gateway's reason.
func TestOfficialSDKsThroughGateway(t *testing.T) {
	py := testenv.Python(t, "gateway")
	p := startPipeline(t, pipelineOpts{})
	script, _ := filepath.Abs("../../tests/python/gateway/clients.py")
	out, err := exec.Command(py, script, "http://"+p.gw, acmeKey).CombinedOutput()
	if err != nil {
		t.Fatalf("clients.py: %v\n%s", err, out)
	}
	type result struct {
		Call  string `json:"call"`
		OK    bool   `json:"ok"`
		ID    string `json:"id"`
		Text  string `json:"text"`
		Error *struct {
			Status int            `json:"status"`
			Class  string         `json:"class"`
			Body   map[string]any `json:"body"`
		} `json:"error"`
	}
	got := map[string]result{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r result
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Call != "" {
			got[r.Call] = r
		}
	}
	for _, name := range []string{"chat", "chat_stream", "responses", "responses_stream", "embeddings", "messages", "messages_stream"} {
		r, ok := got[name]
		if !ok || !r.OK || r.Text == "" {
			t.Errorf("%s: %+v (output:\n%s)", name, r, out)
		}
	}
	if r := got["chat_denied"]; r.OK || r.Error == nil || r.Error.Status != 429 || r.Error.Class != "RateLimitError" {
		t.Errorf("chat_denied: %+v", r)
	} else if e, _ := r.Error.Body["code"].(string); e != "budget_exceeded" {
		t.Errorf("chat_denied body: %v", r.Error.Body)
	}
	if r := got["messages_denied"]; r.OK || r.Error == nil || r.Error.Status != 403 || r.Error.Class != "PermissionDeniedError" {
		t.Errorf("messages_denied: %+v", r)
	}
	// Seven calls reached the provider; the two denied ones did not, and
	// the SDKs did not retry them (x-should-retry: false).
	if n := len(p.provider.Billed()); n != 7 {
		t.Errorf("provider billed %d calls, want 7", n)
	}
	s := p.waitEvents(t, "acme-legal", 7)
	if s.Reservations != 0 {
		t.Errorf("reservations left: %+v", s)
	}
}
