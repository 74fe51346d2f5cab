package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/app"
	"github.com/tokenmeter/tokenmeter/internal/gateway/gatewaytest"
	"github.com/tokenmeter/tokenmeter/internal/telemetry"
)

// The tests here run the real pipeline in one process (embedded broker,
// budget, processor and gateway roles, the repository's price catalogue)
// in front of the fake provider on loopback, and compare what tokenmeter
// accounted with what the provider billed, priced by hand from the
// catalogue rates below.

// Catalogue list prices (USD per million tokens, pipelines/prices/catalogue.yaml)
// and the test FX rate (testdata/fx.csv).
var (
	fx               = decimal.RequireFromString("7.8")
	gpt4oMiniIn      = decimal.RequireFromString("0.15")
	gpt4oMiniOut     = decimal.RequireFromString("0.60")
	haikuIn          = decimal.RequireFromString("1.00")
	haikuOut         = decimal.RequireFromString("5.00")
	embedSmallIn     = decimal.RequireFromString("0.02")
	million          = decimal.NewFromInt(1_000_000)
	acmeKey          = "gw-test-key-legal-0001"
	acmeMarketingKey = "gw-test-key-marketing-0002"
	acmeToken        = "gateway-test-acme-token"
)

func hkd(inRate, outRate decimal.Decimal, in, out int64) decimal.Decimal {
	usd := inRate.Mul(decimal.NewFromInt(in)).Add(outRate.Mul(decimal.NewFromInt(out))).Div(million)
	return usd.Mul(fx)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// pipeline is a running tokenmeter with the gateway role.
type pipeline struct {
	api, gw      string
	authzGRPC    string // Envoy ext_authz gRPC address
	provider     *gatewaytest.Provider
	providerAddr string // host:port of the fake provider
}

type pipelineOpts struct {
	legalAmount string // acme-legal (enforce) amount in HKD
	extraYAML   string
	gatewayYAML string // more gateway: fields, two-space indented
	ttl         string
	// providerOutput is the fake provider's output when the call sets no cap (default 24).
	providerOutput int64
}

func startPipeline(t *testing.T, o pipelineOpts) *pipeline {
	t.Helper()
	if o.legalAmount == "" {
		o.legalAmount = "100"
	}
	if o.ttl == "" {
		o.ttl = "5m"
	}
	prov := &gatewaytest.Provider{MaxOutput: o.providerOutput}
	up := httptest.NewServer(prov)
	t.Cleanup(up.Close)
	p := &pipeline{api: freePort(t), gw: freePort(t), authzGRPC: freePort(t), provider: prov, providerAddr: strings.TrimPrefix(up.URL, "http://")}
	repo, _ := filepath.Abs("../..")
	dir := t.TempDir()
	t.Setenv("GW_TEST_TOKEN", acmeToken)
	// The pipeline runs on its own embedded broker: the environment's real
	// services (make test exports them) must not override the config.
	for _, k := range []string{"KAFKA_BROKERS", "CLICKHOUSE_ADDR", "TOKENMETER_ROLES", "TOKENMETER_HTTP_LISTEN"} {
		t.Setenv(k, "")
	}
	cfg := fmt.Sprintf(`
roles: [budget, processor, collector, gateway]
collector: {otlp: {grpc_listen: "", http_listen: ""}}
http: {listen: "%s"}
kafka:
  embedded: {listen: "%s", data_dir: "%s/kafka"}
  topics: {partitions: 3, retention: 2232h}
tenants:
  - {id: acme, reporting_currency: HKD, time_zone: Asia/Hong_Kong, token_env: [GW_TEST_TOKEN]}
pricing:
  catalogues: [%s/pipelines/prices/catalogue.yaml, %s/internal/gateway/testdata/embeddings.yaml]
  fx: %s/internal/gateway/testdata/fx.csv
processor:
  transactional_id: gw-test-processor
budget:
  reservation_ttl: %s
  budgets:
    - {id: acme-legal, tenant: acme, scope: {workflow: legal-research}, amount: "%s", mode: enforce}
    - {id: acme-marketing-key, tenant: acme, scope: {api_key: marketing}, amount: "1000000", unit: tokens, mode: enforce}
    - {id: acme-user-u7, tenant: acme, scope: {user: u-7}, amount: "0.000001", mode: enforce}
gateway:
  listen: "%s"
  authz_grpc_listen: "%s"
%s
  openai: {url: "%s", api_key: upstream-openai-key}
  anthropic: {url: "%s", api_key: upstream-anthropic-key}
  keys:
    - {name: legal, key: %s, tenant: acme, workflow: legal-research, team: legal}
    - {name: marketing, key: %s, tenant: acme, workflow: marketing-copy}
%s`, p.api, freePort(t), dir, repo, repo, repo, o.ttl, o.legalAmount, p.gw, p.authzGRPC, o.gatewayYAML, up.URL, up.URL, acmeKey, acmeMarketingKey, o.extraYAML)
	path := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := app.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, c, telemetry.Discard(), 20*time.Second) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("pipeline stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("pipeline did not stop")
		}
	})
	// Ready: every role (the budget state rebuilt).
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("pipeline exited: %v", err)
		default:
		}
		resp, err := http.Get("http://" + p.api + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("pipeline never ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

type budgetStatus struct {
	Spent        decimal.Decimal `json:"spent"`
	Reserved     decimal.Decimal `json:"reserved"`
	Events       int64           `json:"events"`
	Reservations int             `json:"reservations"`
}

func (p *pipeline) budget(t *testing.T, id string) budgetStatus {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+p.api+"/v1/budgets/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+acmeToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s budgetStatus
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitSpent waits until budget id has accounted events priced events, then returns it.
func (p *pipeline) waitEvents(t *testing.T, id string, events int64) budgetStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := p.budget(t, id)
		if s.Events >= events {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("budget %s: %d events accounted, want %d (%+v)", id, s.Events, events, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *pipeline) post(t *testing.T, path, key string, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+p.gw+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if strings.HasPrefix(path, "/v1/messages") {
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
	} else {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// TestGatewayMetersBothAPIsStreamedAndNot sends each API through the
// gateway, streamed and not, and checks the legal-research budget ends at
// exactly what the provider billed, priced by hand, with no reservation left.
func TestGatewayMetersBothAPIsStreamedAndNot(t *testing.T) {
	p := startPipeline(t, pipelineOpts{})
	calls := []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Summarise the lease."}],"max_tokens":10}`},
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Stream the summary."}],"stream":true}`},
		{"/v1/responses", `{"model":"gpt-4o-mini","input":"Find the clause.","max_output_tokens":16}`},
		{"/v1/responses", `{"model":"gpt-4o-mini","input":"Stream the clause.","stream":true}`},
		{"/v1/embeddings", `{"model":"text-embedding-3-small","input":"contract text"}`},
		{"/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":20,"messages":[{"role":"user","content":"Review this."}]}`},
		{"/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":12,"stream":true,"messages":[{"role":"user","content":"Stream a review."}]}`},
	}
	for _, c := range calls {
		resp, b := p.post(t, c.path, acmeKey, c.body, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", c.path, resp.StatusCode, b)
		}
		if resp.Header.Get("X-Tokenmeter-Decision") != "allow" {
			t.Errorf("%s: decision header %q", c.path, resp.Header.Get("X-Tokenmeter-Decision"))
		}
		if strings.Contains(c.body, `"stream":true`) && !bytes.Contains(b, []byte("data: ")) {
			t.Errorf("%s: stream not relayed: %s", c.path, b)
		}
	}
	billed := p.provider.Billed()
	if len(billed) != len(calls) {
		t.Fatalf("provider billed %d calls, want %d", len(billed), len(calls))
	}
	want := decimal.Zero
	for _, b := range billed {
		switch {
		case b.API == "messages":
			want = want.Add(hkd(haikuIn, haikuOut, b.InputTokens, b.OutputTokens))
		case b.API == "embeddings":
			want = want.Add(hkd(embedSmallIn, decimal.Zero, b.InputTokens, 0))
		default:
			want = want.Add(hkd(gpt4oMiniIn, gpt4oMiniOut, b.InputTokens, b.OutputTokens))
		}
	}
	s := p.waitEvents(t, "acme-legal", int64(len(calls)))
	t.Logf("spent %s HKD over %d events; provider billed %s HKD", s.Spent, s.Events, want)
	if !s.Spent.Equal(want) {
		t.Errorf("spent %s HKD, provider billed %s HKD", s.Spent, want)
	}
	if s.Events != int64(len(calls)) || s.Reservations != 0 || !s.Reserved.IsZero() {
		t.Errorf("after settling: %+v, want %d events and no reservation", s, len(calls))
	}
}
