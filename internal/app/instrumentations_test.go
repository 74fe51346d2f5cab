package app

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/contract"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/telemetry"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// TestRealInstrumentations runs the real Python instrumentation libraries
// (tests/python/instrumentations, pinned) against a fake OpenAI/Anthropic
// server on loopback, exporting OTLP to the real collector over HTTP and
// gRPC; the collector produces to the embedded broker and the real processor
// prices. Every priced event's tokens, completeness and cost are compared
// with values computed by hand from the catalogue's list prices:
//
//	gpt-4o-2024-08-06 (2.50 / 1.25 cached / 10.00 per M): 1200 input of which
//	  1000 cached, 300 output = 200*2.50 + 1000*1.25 + 300*10 = 4750 µ$ = 0.00475
//	  priced without the cache split (openai-v2): 1200*2.50 + 3000 = 0.006 (upper bound)
//	  priority tier (4.25 / 2.125 / 17.00): 850 + 2125 + 5100 = 0.008075
//	claude-sonnet-4-5 (3.00 / 0.30 read / 3.75 write / 15.00): 500 uncached +
//	  400 reads + 100 writes, 500 output = 1500 + 120 + 375 + 7500 = 0.009495
//	  cache lost by the library (OpenLIT stream): 500*3 + 500*15 = 0.009 (lower bound)
//	  output 501 (OpenLLMetry stream adds message_start's 1): 0.009495 + 15e-6 = 0.00951
//	  50 uncached + 12000 reads, 20 output: 150 + 3600 + 300 = 0.00405
func TestRealInstrumentations(t *testing.T) {
	py := testenv.Python(t, "instrumentations")
	clearEnv(t)
	dir, _ := filepath.Abs("../../tests/python/instrumentations")
	prices, _ := filepath.Abs("../../pipelines/prices/catalogue.yaml")

	fake := exec.Command(py, filepath.Join(dir, "fake_provider.py"), "0")
	out, err := fake.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	fake.Stderr = os.Stderr
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Process.Kill(); _ = fake.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening ") {
		t.Fatalf("fake provider: %q %v", line, err)
	}
	fakeURL := "http://" + strings.TrimSpace(strings.TrimPrefix(line, "listening "))

	const token = "instr-test-token"
	sum := sha256.Sum256([]byte(token))
	api, broker, otlpHTTP, otlpGRPC := freePort(t), freePort(t), freePort(t), freePort(t)
	tmp := t.TempDir()
	today := time.Now().UTC().Format(time.DateOnly)
	fx := filepath.Join(tmp, "fx.csv")
	if err := os.WriteFile(fx, []byte("date,base,quote,rate,source\n2025-01-01,USD,HKD,7.8,test\n"+today+",USD,HKD,7.8,test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(write(t, fmt.Sprintf(`
roles: [collector, processor]
http: {listen: "%s"}
kafka: {embedded: {listen: "%s"}, topics: {partitions: 2}}
collector: {otlp: {http_listen: "%s", grpc_listen: "%s"}}
tenants:
  - id: acme
    reporting_currency: HKD
    time_zone: Asia/Hong_Kong
    token_sha256: ["%s"]
pricing:
  catalogues: [%s]
  fx: %s
processor:
  transactional_id: instr-test
  attribution:
    rules:
      - name: zero-code-by-service-name   # a rule on a resource attribute of OTLP spans
        when: {attributes.service.name: "instr-zerocode-*"}
        set: {workflow: zero-code-app, team: platform}
`, api, broker, otlpHTTP, otlpGRPC, hex.EncodeToString(sum[:]), prices, fx)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, telemetry.Discard(), 20*time.Second) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("run did not stop")
		}
	})
	waitReady(t, api)

	type want struct {
		input, cacheRead, cacheWrite, output int64
		completeness, tier, cost             string
	}
	openaiExact := want{input: 1200, cacheRead: 1000, output: 300, tier: "standard", cost: "0.00475"}
	anthropicExact := want{input: 1000, cacheRead: 400, cacheWrite: 100, output: 500, cost: "0.009495"}
	cases := []struct {
		name string
		args []string
		want want
		user string // "" = u-42 (set by the app)
	}{
		{"otel-http", []string{"otel", "openai"}, want{input: 1200, output: 300, tier: "standard", completeness: event.UsageCacheUnreported, cost: "0.006"}, ""},
		{"otel-grpc-stream", []string{"otel", "openai", "--stream", "--protocol", "grpc"}, want{input: 1200, output: 300, tier: "standard", completeness: event.UsageCacheUnreported, cost: "0.006"}, ""},
		// Zero-code with both OpenAI instrumentors installed (the official
		// one and OpenLLMetry's share the entry-point name "openai", so
		// neither can be disabled alone): each call gets two nested spans
		// with the same gen_ai.response.id; the one reporting the cache
		// split is kept, the other counted as a duplicate.
		{"zerocode", []string{"zerocode", "openai"}, openaiExact, "-"},
		// A stream read without include_usage: the call is there, its usage
		// is not. Counted as an unmetered call, not as $0 of usage.
		{"otel-stream-no-usage", []string{"otel", "openai", "--stream", "--no-stream-usage"},
			want{tier: "standard", completeness: event.UsageMissing, cost: "0"}, ""},
		{"openlit-openai", []string{"openlit", "openai"}, openaiExact, ""},
		{"openlit-openai-stream-grpc", []string{"openlit", "openai", "--stream", "--protocol", "grpc"}, openaiExact, ""},
		{"openlit-openai-priority", []string{"openlit", "openai", "--service-tier", "priority"}, want{input: 1200, cacheRead: 1000, output: 300, tier: "priority", cost: "0.008075"}, ""},
		{"openlit-anthropic", []string{"openlit", "anthropic"}, anthropicExact, ""},
		{"openlit-anthropic-stream", []string{"openlit", "anthropic", "--stream"}, want{input: 500, output: 500, completeness: event.UsageCacheOmitted, cost: "0.009"}, ""},
		{"openlit-anthropic-bigcache", []string{"openlit", "anthropic", "--scenario", "anthropic-bigcache"}, want{input: 12050, cacheRead: 12000, output: 20, cost: "0.00405"}, ""},
		{"traceloop-openai", []string{"traceloop", "openai"}, openaiExact, ""},
		// OpenLLMetry leaves openai.response.service_tier off stream spans:
		// no tier arrives, so the call is priced at standard (right here;
		// a flex or priority stream would be mispriced: docs/ingest.md).
		{"traceloop-openai-stream-grpc", []string{"traceloop", "openai", "--stream", "--protocol", "grpc"},
			want{input: 1200, cacheRead: 1000, output: 300, cost: "0.00475"}, ""},
		{"traceloop-anthropic", []string{"traceloop", "anthropic"}, anthropicExact, ""},
		// OpenLLMetry adds message_start's output_tokens (1) to the final
		// count; the span carries no stream marker to correct it by.
		{"traceloop-anthropic-stream", []string{"traceloop", "anthropic", "--stream"}, want{input: 1000, cacheRead: 400, cacheWrite: 100, output: 501, cost: "0.00951"}, ""},
		{"plain-anthropic", []string{"plain", "anthropic"}, anthropicExact, "-"},
	}
	const calls = 5
	expected := map[string]want{}
	// TOKENMETER_INSTR_CASES=a,b runs only those cases (while debugging one library).
	only := os.Getenv("TOKENMETER_INSTR_CASES")
	for _, c := range cases {
		if only != "" && !strings.Contains(","+only+",", ","+c.name+",") {
			continue
		}
		args := append([]string{filepath.Join(dir, "app.py")}, c.args...)
		args = append(args, "--workflow", c.name, "--calls", fmt.Sprint(calls))
		var cmd *exec.Cmd
		env := append(os.Environ(), "FAKE_PROVIDER_URL="+fakeURL, "TM_TOKEN="+token, "TM_OTLP_HTTP=http://"+otlpHTTP,
			"TM_OTLP_GRPC="+otlpGRPC, "OTEL_BSP_SCHEDULE_DELAY=200")
		switch c.args[0] {
		case "zerocode":
			// No code: opentelemetry-instrument with the official OpenAI instrumentation only.
			cmd = exec.Command(filepath.Join(filepath.Dir(py), "opentelemetry-instrument"), append([]string{py}, args...)...)
			env = append(env, "OTEL_SERVICE_NAME=instr-zerocode-"+c.name, "OTEL_TRACES_EXPORTER=otlp", "OTEL_METRICS_EXPORTER=none",
				"OTEL_LOGS_EXPORTER=none", "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+otlpHTTP,
				"OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20"+token, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="+disabledForZeroCode)
		default:
			cmd = exec.Command(py, args...)
		}
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c.name, err, b)
		}
		wf := c.name
		if c.args[0] == "zerocode" {
			wf = "zero-code-app"
		}
		if c.args[0] == "plain" {
			// No instrumentation library: the anthropic SDK (pinned
			// version) has no built-in tracing, so only the app's own
			// workflow span exists and nothing is metered.
			wf = ""
		}
		if wf != "" {
			expected[wf] = c.want
		}
	}

	priced := readPriced(t, broker, calls*len(expected))
	byWorkflow := map[string][]event.PricedUsageEvent{}
	for _, p := range priced {
		byWorkflow[p.Workflow] = append(byWorkflow[p.Workflow], p)
	}
	for wf, w := range expected {
		evs := byWorkflow[wf]
		if len(evs) != calls {
			t.Errorf("%s: %d priced events, want %d (one per call)", wf, len(evs), calls)
			continue
		}
		for _, e := range evs {
			got := want{e.InputTokens, e.CacheReadInputTokens, e.CacheWriteInputTokens, e.OutputTokens, e.UsageCompleteness, e.ServiceTier, ""}
			w2 := w
			w2.cost = ""
			if got != w2 {
				t.Errorf("%s: got %+v\n want %+v", wf, got, w2)
			}
			if !e.ListCost.Decimal().Equal(decimal.RequireFromString(w.cost)) {
				t.Errorf("%s: list cost %s, want %s", wf, e.ListCost, w.cost)
			}
			if wf == "zero-code-app" {
				if e.AttributionRule != "zero-code-by-service-name" || e.Team != "platform" {
					t.Errorf("%s: rule %q team %q, want the service.name rule", wf, e.AttributionRule, e.Team)
				}
			} else if e.UserID != "u-42" {
				t.Errorf("%s: user %q, want u-42 (inherited from the workflow span / traceloop association property)", wf, e.UserID)
			}
		}
	}
	if n := len(byWorkflow["plain-anthropic"]); n != 0 {
		t.Errorf("plain SDK: %d events, want none (no instrumentation)", n)
	}
	if t.Failed() {
		for _, p := range priced {
			b, _ := json.Marshal(p)
			t.Logf("priced: %s", b)
		}
	}
}

// disabledForZeroCode: every installed instrumentor except the two OpenAI
// ones (the official and OpenLLMetry's, both named "openai").
const disabledForZeroCode = "anthropic,httpx,requests,urllib,urllib3,aiohttp-client,logging,threading,redis,sqlalchemy," +
	"agno,alephalpha,bedrock,chromadb,cohere,crewai,google_generativeai,groq,haystack,lancedb,langchain,litellm,llamaindex," +
	"marqo,mcp,milvus,mistralai,ollama,openai_agents,pinecone,qdrant,replicate,sagemaker,together,transformers,vertexai," +
	"voyageai,watsonx,weaviate,writer,asgi,django,falcon,fastapi,flask,pyramid,starlette,tornado,wsgi"

func waitReady(t *testing.T, api string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + api + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("not ready within 60s")
}

// readPriced reads the priced topic (read-committed) until n events arrived,
// and checks that the collector produced exactly n usage records: a
// duplicate report of a call would be one more.
func readPriced(t *testing.T, broker string, n int) []event.PricedUsageEvent {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeTopics(event.TopicPriced), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []event.PricedUsageEvent
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Errorf("read %d of %d priced events", len(out), n)
			return out
		}
		fs.EachRecord(func(r *kgo.Record) {
			var p event.PricedUsageEvent
			if err := contract.DecodePriced(r.Value, &p); err != nil {
				t.Errorf("priced record: %v", err)
				return
			}
			out = append(out, p)
		})
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), event.TopicUsage)
	if err != nil {
		t.Fatal(err)
	}
	var usage int64
	ends.Each(func(o kadm.ListedOffset) { usage += o.Offset })
	if usage != int64(n) {
		t.Errorf("the collector produced %d usage records, want %d (one per model call)", usage, n)
	}
	return out
}
