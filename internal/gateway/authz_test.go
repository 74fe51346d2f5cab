package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// reportUsage posts a usage event through the collector, as an app (or an
// OTel span) reports a call made through an external gateway.
func (p *pipeline) reportUsage(t *testing.T, eventID, requestID string, in, out int64) {
	t.Helper()
	ev := fmt.Sprintf(`{"event_id":%q,"event_time":%q,"provider":"openai","model":"gpt-4o-mini","workflow":"legal-research",
		"input_tokens":%d,"output_tokens":%d,"attributes":{"budget.request_id":%q}}`,
		eventID, time.Now().UTC().Format(time.RFC3339Nano), in, out, requestID)
	req, _ := http.NewRequest("POST", "http://"+p.api+"/v1/usage", strings.NewReader(ev))
	req.Header.Set("Authorization", "Bearer "+acmeToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("usage: %d %s", resp.StatusCode, b)
	}
}

// TestEnvoyExtAuthzHTTP sends what Envoy's HTTP ext_authz filter sends
// (http_service.path_prefix /v1/gateway/envoy, with_request_body on): the
// original method, the prefixed path, the allowed headers (authorization,
// x-request-id) and the buffered body. 200 allows and names the
// reservation; the app's usage event with budget.request_id settles it; a
// call that does not fit is denied with 403 and the provider-shaped body
// Envoy relays to the client.
func TestEnvoyExtAuthzHTTP(t *testing.T) {
	p := startPipeline(t, pipelineOpts{})
	check := func(reqID, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", "http://"+p.api+"/v1/gateway/envoy/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+acmeKey)
		req.Header.Set("X-Request-Id", reqID)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Envoy-Expected-Rq-Timeout-Ms", "200")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	resp, b := check("envoy-req-1", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}],"max_tokens":100}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Tokenmeter-Request-Id") != "envoy-req-1" {
		t.Fatalf("allow: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	if s := p.budget(t, "acme-legal"); s.Reservations != 1 {
		t.Fatalf("after allow: %+v, want one reservation", s)
	}
	p.reportUsage(t, "chatcmpl-envoy-1", "envoy-req-1", 20, 30)
	s := p.waitEvents(t, "acme-legal", 1)
	if want := hkd(gpt4oMiniIn, gpt4oMiniOut, 20, 30); !s.Spent.Equal(want) || s.Reservations != 0 {
		t.Errorf("after the usage event: %+v, want spent %s and no reservation", s, want)
	}
	// 100 M output tokens of gpt-4o-mini are 60 USD = 468 HKD > 100 HKD.
	resp, b = check("envoy-req-2", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}],"max_tokens":100000000}`)
	var e struct {
		Error struct{ Message, Type, Code string } `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	if resp.StatusCode != 403 || e.Error.Code != "budget_exceeded" || !strings.Contains(e.Error.Message, "acme-legal") {
		t.Errorf("deny: %d %s", resp.StatusCode, b)
	}
	// Not a model call: allowed, not metered.
	req, _ := http.NewRequest("GET", "http://"+p.api+"/v1/gateway/envoy/v1/models", nil)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 200 {
		t.Errorf("GET /v1/models: %v %v", r, err)
	}
}

func nginxBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("TOKENMETER_NGINX"); b != "" {
		return b
	}
	for _, c := range []string{"nginx", "/usr/sbin/nginx"} {
		if b, err := exec.LookPath(c); err == nil {
			return b
		}
	}
	if testenv.RequireServices() {
		t.Fatal("nginx not found: run deploy/local/tools.sh ensure")
	}
	t.Skip("nginx not found; run deploy/local/tools.sh ensure")
	return ""
}

// TestNginxAuthRequest puts Debian's nginx with auth_request in front of
// the fake provider, asking tokenmeter's auth-request endpoint before each
// call: an allowed call reaches the provider with the reservation id, a
// call that does not fit gets 403 and never reaches it.
func TestNginxAuthRequest(t *testing.T) {
	bin := nginxBinary(t)
	p := startPipeline(t, pipelineOpts{})
	up := p.providerAddr
	listen := freePort(t)
	dir := t.TempDir()
	for _, d := range []string{"logs", "tmp"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log info;
events { worker_connections 64; }
http {
  access_log %[1]s/logs/access.log;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  server {
    listen %[2]s;
    location /v1/ {
      auth_request /_tokenmeter;
      auth_request_set $tm_request_id $upstream_http_x_tokenmeter_request_id;
      proxy_set_header X-Tokenmeter-Request-Id $tm_request_id;
      proxy_pass http://%[3]s;
    }
    location = /_tokenmeter {
      internal;
      proxy_pass http://%[4]s/v1/gateway/auth-request;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Content-Length $content_length;
      proxy_set_header X-Request-Id $request_id;
    }
  }
}
`, dir, listen, up, p.api)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	call := func(maxTokens string) (*http.Response, string) {
		var resp *http.Response
		var err error
		for i := 0; i < 100; i++ {
			req, _ := http.NewRequest("POST", "http://"+listen+"/v1/chat/completions",
				strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":`+maxTokens+`}`))
			req.Header.Set("Authorization", "Bearer "+acmeKey)
			req.Header.Set("X-Tokenmeter-Model", "gpt-4o-mini")
			req.Header.Set("X-Tokenmeter-Max-Tokens", maxTokens)
			if resp, err = http.DefaultClient.Do(req); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, body := call("10")
	if resp.StatusCode != 200 || !strings.Contains(body, "chatcmpl-fake") {
		t.Fatalf("allowed call through nginx: %d %s", resp.StatusCode, body)
	}
	if s := p.budget(t, "acme-legal"); s.Reservations != 1 || !s.Reserved.IsPositive() {
		t.Errorf("after the allowed call: %+v, want one reservation held", s)
	}
	resp, body = call("100000000")
	if resp.StatusCode != 403 {
		t.Errorf("denied call through nginx: %d %s", resp.StatusCode, body)
	}
	if n := len(p.provider.Billed()); n != 1 {
		t.Errorf("provider saw %d calls, want 1 (the denied one must not reach it)", n)
	}
}

// TestEnvoyExtAuthzGRPC sends the CheckRequest Envoy's gRPC ext_authz
// filter sends (attributes.request.http with the original path, headers
// and, with with_request_body + pack_as_bytes, the raw body) and checks the
// OK answer with the reservation header, and a PERMISSION_DENIED one
// carrying the 403 status and provider-shaped body for the client.
func TestEnvoyExtAuthzGRPC(t *testing.T) {
	p := startPipeline(t, pipelineOpts{})
	conn, err := grpc.NewClient(p.authzGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := authv3.NewAuthorizationClient(conn)
	check := func(id, body string) *authv3.CheckResponse {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cl.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Id: id, Method: "POST", Path: "/v1/messages", Host: "api.anthropic.com", Scheme: "https",
				Protocol: "HTTP/1.1", Size: int64(len(body)), RawBody: []byte(body),
				Headers: map[string]string{":authority": "api.anthropic.com", ":method": "POST", ":path": "/v1/messages",
					"x-api-key": acmeKey, "anthropic-version": "2023-06-01", "content-type": "application/json", "x-request-id": id},
			}}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	ok := check("grpc-req-1", `{"model":"claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":"hello"}]}`)
	if ok.GetStatus().GetCode() != 0 || ok.GetOkResponse() == nil {
		t.Fatalf("allow: %v", ok)
	}
	found := false
	for _, h := range ok.GetOkResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "x-tokenmeter-request-id" && h.GetHeader().GetValue() == "grpc-req-1" {
			found = true
		}
	}
	if !found {
		t.Errorf("allow without x-tokenmeter-request-id: %v", ok.GetOkResponse().GetHeaders())
	}
	if s := p.budget(t, "acme-legal"); s.Reservations != 1 {
		t.Errorf("after allow: %+v", s)
	}
	// 100 M output tokens of Haiku: 500 USD, far over 100 HKD.
	deny := check("grpc-req-2", `{"model":"claude-haiku-4-5","max_tokens":100000000,"messages":[{"role":"user","content":"hello"}]}`)
	d := deny.GetDeniedResponse()
	if deny.GetStatus().GetCode() != 7 || d == nil || d.GetStatus().GetCode() != 403 ||
		!strings.Contains(d.GetBody(), `"type":"permission_error"`) || !strings.Contains(d.GetBody(), "acme-legal") {
		t.Errorf("deny: %v", deny)
	}
}
