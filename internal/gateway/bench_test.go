package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/budget"
	"github.com/tokenmeter/tokenmeter/internal/gateway/gatewaytest"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// BenchmarkProxyCall is the gateway's own work per call, in process: read
// and estimate, check and reserve (a budget role's ledger), forward to the
// fake provider on loopback, read the usage, price and settle, produce the
// usage event (to kfake). bench/gateway measures it across processes.
func BenchmarkProxyCall(b *testing.B) {
	reg, err := tenant.NewRegistry([]tenant.Config{{ID: "acme", ReportingCurrency: "HKD", TimeZone: "Asia/Hong_Kong", TokenSHA256: []string{tenant.HashToken("t")}}})
	if err != nil {
		b.Fatal(err)
	}
	root, _ := filepath.Abs("../..")
	prices, err := pricing.Load(pricing.Config{Catalogues: []string{root + "/pipelines/prices/catalogue.yaml"}, FX: root + "/internal/gateway/testdata/fx.csv"}, func(p string) string { return p })
	if err != nil {
		b.Fatal(err)
	}
	var kc kafkax.Config
	kc.ApplyDefaults()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, kc.Topics.Usage))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	kc.Brokers = c.ListenAddrs()
	deps := role.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Tenants: reg, Kafka: kc}
	bc := budget.Config{Budgets: []budget.BudgetConfig{{ID: "legal", Tenant: "acme", Amount: "1000000000", Mode: budget.ModeEnforce, Scope: budget.Scope{Workflow: "legal"}}}}
	bc.ApplyDefaults()
	led, err := budget.New(bc, prices, deps)
	if err != nil {
		b.Fatal(err)
	}
	up := httptest.NewServer(&gatewaytest.Provider{})
	defer up.Close()
	cfg := Config{OpenAI: UpstreamConfig{URL: up.URL}, Anthropic: UpstreamConfig{URL: up.URL},
		Keys: []KeyConfig{{Name: "k", Key: "bench-gateway-key-000001", Tenant: "acme", Workflow: "legal"}}}
	cfg.ApplyDefaults()
	g, err := New(cfg, led, prices, deps)
	if err != nil {
		b.Fatal(err)
	}
	g.client, _ = kgo.NewClient(kc.ClientOpts()...)
	defer g.client.Close()
	g.upstream = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Summarise clause 7 of the lease in two lines."}],"max_tokens":24}`
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer bench-gateway-key-000001")
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	b.StopTimer()
	_ = g.client.Flush(b.Context())
}
