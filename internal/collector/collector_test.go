package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/telemetry"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	acmeToken   = "acme-secret-token"
	globexToken = "globex-secret-token"
)

// testNow is the collector's clock in tests.
var testNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

type harness struct {
	c       *Collector
	cluster *kfake.Cluster
	kcfg    kafkax.Config
	tel     *telemetry.Telemetry
}

func newCluster(t testing.TB) (*kfake.Cluster, kafkax.Config) {
	t.Helper()
	var kcfg kafkax.Config
	kcfg.ApplyDefaults()
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, kcfg.Topics.Usage, kcfg.Topics.Outcomes, kcfg.Topics.DLQ))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	kcfg.Brokers = cl.ListenAddrs()
	return cl, kcfg
}

func testTenants(t testing.TB) *tenant.Registry {
	t.Helper()
	reg, err := tenant.NewRegistry([]tenant.Config{
		{ID: "acme", TimeZone: "UTC", TokenSHA256: []string{tenant.HashToken(acmeToken)}},
		{ID: "globex", TimeZone: "UTC", TokenSHA256: []string{tenant.HashToken(globexToken)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func off() *string { s := ""; return &s }

// newHarness starts a collector on a fresh kfake cluster; OTLP listeners are
// off unless mutate turns them on.
func newHarness(t testing.TB, mutate func(*Config)) *harness {
	t.Helper()
	return newHarnessDeps(t, mutate, nil)
}

// newHarnessDeps is newHarness with the role's deps changed by mutateDeps.
func newHarnessDeps(t testing.TB, mutate func(*Config), mutateDeps func(*role.Deps)) *harness {
	t.Helper()
	cluster, kcfg := newCluster(t)
	cfg := Config{}
	cfg.OTLP.GRPCListen, cfg.OTLP.HTTPListen = off(), off()
	if mutate != nil {
		mutate(&cfg)
	}
	cfg.ApplyDefaults()
	tel := telemetry.Discard()
	deps := role.Deps{Logger: tel.Logger, Meter: tel.Meter, MeterProvider: tel.MeterProvider,
		Kafka: kcfg, Tenants: testTenants(t), Mux: http.NewServeMux()}
	if mutateDeps != nil {
		mutateDeps(&deps)
	}
	c, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return testNow }
	fatal := make(chan error, 4)
	if err := c.Start(context.Background(), fatal); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &harness{c: c, cluster: cluster, kcfg: kcfg, tel: tel}
}

type postOpt func(*http.Request)

func withHeader(k, v string) postOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

func (h *harness) post(t testing.TB, path, token, contentType string, body []byte, opts ...postOpt) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	h.c.deps.Mux.ServeHTTP(w, r)
	return w
}

// consume reads exactly n records from topic (waiting for them; the test's
// deadline bounds the wait) and then checks nothing more is there.
func consume(t testing.TB, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: got %d records, want %d", topic, len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	// One more short poll: there must be nothing beyond n.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	cl.PollFetches(ctx2).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	if len(out) != n {
		t.Fatalf("topic %s: got %d records, want exactly %d", topic, len(out), n)
	}
	return out
}

func decodeResp(t testing.TB, w *httptest.ResponseRecorder) IngestResponse {
	t.Helper()
	var r IngestResponse
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatalf("response %d %q: %v", w.Code, w.Body.String(), err)
	}
	return r
}

const twoEvents = `[
 {"event_id":"e-1","event_time":"2026-11-28T10:15:30.123456Z","provider":"openai","model":"gpt-4o",
  "input_tokens":1200,"cache_read_input_tokens":200,"output_tokens":300,"reasoning_tokens":100,"workflow":"support-copilot"},
 {"event_id":"e-2","event_time":"2026-11-28T18:15:30+08:00","tenant":"acme","provider":"Anthropic","model":"claude-sonnet-4",
  "input_tokens":50,"output_tokens":5,"workflow":"legal-research"}
]`

func TestUsageAcceptedAfterBrokerAck(t *testing.T) {
	h := newHarness(t, nil)
	w := h.post(t, "/v1/usage", acmeToken, "application/json", []byte(twoEvents))
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if r := decodeResp(t, w); r.Accepted != 2 || r.Rejected != 0 {
		t.Fatalf("response %+v", r)
	}
	recs := consume(t, h.kcfg.Brokers, h.kcfg.Topics.Usage, 2)
	byID := map[string]*kgo.Record{}
	for _, r := range recs {
		var ev event.UsageEvent
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		byID[ev.EventID] = r
	}
	// e-1: tenant filled from the token; time cut to milliseconds in UTC.
	want1 := event.UsageEvent{EventID: "e-1", EventTime: time.Date(2026, 11, 28, 10, 15, 30, 123_000_000, time.UTC), Tenant: "acme",
		Provider: "openai", Model: "gpt-4o", InputTokens: 1200, CacheReadInputTokens: 200, OutputTokens: 300, ReasoningTokens: 100,
		Workflow: "support-copilot"}
	// e-2: 18:15:30+08:00 is 10:15:30Z; provider lower-cased.
	want2 := event.UsageEvent{EventID: "e-2", EventTime: time.Date(2026, 11, 28, 10, 15, 30, 0, time.UTC), Tenant: "acme",
		Provider: "anthropic", Model: "claude-sonnet-4", InputTokens: 50, OutputTokens: 5, Workflow: "legal-research"}
	for _, c := range []struct {
		want event.UsageEvent
		key  string
	}{{want1, "acme/support-copilot"}, {want2, "acme/legal-research"}} {
		r := byID[c.want.EventID]
		if r == nil {
			t.Fatalf("event %s not on topic", c.want.EventID)
		}
		if string(r.Key) != c.key {
			t.Errorf("%s key %q, want %q", c.want.EventID, r.Key, c.key)
		}
		wantJSON, _ := json.Marshal(c.want)
		if !bytes.Equal(r.Value, wantJSON) {
			t.Errorf("%s value\n got %s\nwant %s", c.want.EventID, r.Value, wantJSON)
		}
	}
}

func TestPartialBatchListsRejectedItems(t *testing.T) {
	h := newHarness(t, nil)
	body := `{"event_id":"ok-1","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":10,"output_tokens":100}
{"event_id":"bad-1","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"o3","input_tokens":10,"output_tokens":100,"reasoning_tokens":900}
{"event_id":"ok-2" broken json
{"event_id":"ok-3","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":10,"output_tokens":1,"inputtokens":5}
{"event_id":"ok-4","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":7,"output_tokens":1}
`
	w := h.post(t, "/v1/usage", acmeToken, "application/x-ndjson", []byte(body))
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	r := decodeResp(t, w)
	if r.Accepted != 2 || r.Rejected != 3 || len(r.Errors) != 3 {
		t.Fatalf("response %+v", r)
	}
	e := r.Errors
	if e[0].Index != 1 || e[0].ID != "bad-1" || e[0].Reason != "invalid_field" || e[0].Problems[0].Field != "reasoning_tokens" {
		t.Errorf("item 1: %+v", e[0])
	}
	if e[1].Index != 2 || e[1].Reason != "invalid_json" {
		t.Errorf("item 2: %+v", e[1])
	}
	if e[2].Index != 3 || e[2].Reason != "unknown_field" || e[2].Problems[0].Field != "inputtokens" {
		t.Errorf("item 3: %+v", e[2])
	}
	recs := consume(t, h.kcfg.Brokers, h.kcfg.Topics.Usage, 2)
	var ids []string
	for _, rec := range recs {
		var ev event.UsageEvent
		_ = json.Unmarshal(rec.Value, &ev)
		ids = append(ids, ev.EventID)
	}
	if strings.Join(ids, ",") != "ok-1,ok-4" && strings.Join(ids, ",") != "ok-4,ok-1" {
		t.Errorf("topic holds %v, want ok-1 and ok-4", ids)
	}
}

func TestAuth(t *testing.T) {
	h := newHarness(t, nil)
	one := `{"event_id":"x","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1}`
	cases := []struct {
		name  string
		token string
		body  string
		code  int
	}{
		{"no token", "", one, http.StatusUnauthorized},
		{"unknown token", "nope", one, http.StatusUnauthorized},
		{"acme writes globex", acmeToken, `{"tenant":"globex","event_id":"x","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1}`, http.StatusForbidden},
		// One foreign item refuses the whole batch: the valid acme item is not written either.
		{"acme batch with one globex item", acmeToken, `[` + one + `,{"tenant":"globex","event_id":"y","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1}]`, http.StatusForbidden},
		{"globex outcome for acme", globexToken, `{"tenant":"acme","outcome_id":"o","event_time":"2026-11-28T10:00:00Z","workflow":"w","outcome_type":"ticket_resolved"}`, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := "/v1/usage"
			if strings.Contains(c.body, "outcome_id") {
				path = "/v1/outcomes"
			}
			w := h.post(t, path, c.token, "application/json", []byte(c.body))
			if w.Code != c.code {
				t.Fatalf("status %d, want %d: %s", w.Code, c.code, w.Body)
			}
		})
	}
	// Globex's own event lands as globex, then nothing else is on the topic.
	w := h.post(t, "/v1/usage", globexToken, "application/json", []byte(one))
	if w.Code != http.StatusAccepted {
		t.Fatalf("globex own event: %d %s", w.Code, w.Body)
	}
	recs := consume(t, h.kcfg.Brokers, h.kcfg.Topics.Usage, 1)
	if string(recs[0].Key) != "globex/" {
		t.Errorf("key %q, want globex/", recs[0].Key)
	}
}

func TestOutcomes(t *testing.T) {
	h := newHarness(t, nil)
	body := `{"specversion":"1.0","id":"ce-77","source":"crm","type":"tokenmeter.outcome.v1","time":"2026-11-28T09:00:00.5Z",
	 "datacontenttype":"application/json","data":{"workflow":"support-copilot","outcome_type":"ticket_resolved","value":{"amount":"12.50","currency":"USD"}}}`
	w := h.post(t, "/v1/outcomes", acmeToken, "application/cloudevents+json", []byte(body))
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	recs := consume(t, h.kcfg.Brokers, h.kcfg.Topics.Outcomes, 1)
	// outcome_id and event_time come from the CloudEvent envelope; count defaults to 1.
	want := `{"outcome_id":"ce-77","event_time":"2026-11-28T09:00:00.5Z","tenant":"acme","workflow":"support-copilot","outcome_type":"ticket_resolved","count":1,"value":{"amount":"12.5","currency":"USD"}}`
	if string(recs[0].Value) != want {
		t.Errorf("value\n got %s\nwant %s", recs[0].Value, want)
	}
	if string(recs[0].Key) != "acme/support-copilot" {
		t.Errorf("key %q", recs[0].Key)
	}
}

func TestRequestRefusals(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBodyBytes = 600; c.MaxItems = 2 })
	ev := `{"event_id":"x","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1}`
	cases := []struct {
		name, ct, body string
		code           int
	}{
		{"form encoding", "application/x-www-form-urlencoded", ev, http.StatusUnsupportedMediaType},
		{"xml", "application/xml", "<x/>", http.StatusUnsupportedMediaType},
		{"not json", "application/json", "hello", http.StatusBadRequest},
		{"empty", "application/json", "", http.StatusBadRequest},
		{"truncated array", "application/json", "[" + ev, http.StatusBadRequest},
		{"too many items", "application/json", "[" + ev + "," + ev + "," + ev + "]", http.StatusRequestEntityTooLarge},
		{"too large", "application/json", "[" + ev + "," + strings.Repeat(" ", 600) + ev + "]", http.StatusRequestEntityTooLarge},
		{"all invalid", "application/json", `{"event_id":"x"}`, http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := h.post(t, "/v1/usage", acmeToken, c.ct, []byte(c.body))
			if w.Code != c.code {
				t.Fatalf("status %d, want %d: %s", w.Code, c.code, w.Body)
			}
		})
	}
	// Compression bombs are caught on the decompressed size.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("[" + ev + strings.Repeat(" ", 5000) + "]"))
	_ = zw.Close()
	if w := h.post(t, "/v1/usage", acmeToken, "application/json", gz.Bytes(), withHeader("Content-Encoding", "gzip")); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("gzip bomb: status %d: %s", w.Code, w.Body)
	}
	enc, _ := zstd.NewWriter(nil)
	bomb := enc.EncodeAll([]byte("["+ev+strings.Repeat(" ", 1<<20)+"]"), nil)
	_ = enc.Close()
	if w := h.post(t, "/v1/usage", acmeToken, "application/json", bomb, withHeader("Content-Encoding", "zstd")); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("zstd bomb (%d bytes compressed): status %d: %s", len(bomb), w.Code, w.Body)
	}
	if w := h.post(t, "/v1/usage", acmeToken, "application/json", []byte(ev), withHeader("Content-Encoding", "br")); w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("brotli: status %d", w.Code)
	}
}

func TestCompressedBodies(t *testing.T) {
	h := newHarness(t, nil)
	ev := func(id string) []byte {
		return []byte(fmt.Sprintf(`{"event_id":%q,"event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1}`, id))
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(ev("gz"))
	_ = zw.Close()
	if w := h.post(t, "/v1/usage", acmeToken, "application/json", gz.Bytes(), withHeader("Content-Encoding", "gzip")); w.Code != http.StatusAccepted {
		t.Fatalf("gzip: %d %s", w.Code, w.Body)
	}
	enc, _ := zstd.NewWriter(nil)
	zb := enc.EncodeAll(ev("zstd"), nil)
	_ = enc.Close()
	if w := h.post(t, "/v1/usage", acmeToken, "application/json", zb, withHeader("Content-Encoding", "zstd")); w.Code != http.StatusAccepted {
		t.Fatalf("zstd: %d %s", w.Code, w.Body)
	}
	consume(t, h.kcfg.Brokers, h.kcfg.Topics.Usage, 2)
}

// TestBufferFull holds the broker's first produce request so the first
// request's records stay buffered; a second request that does not fit gets
// 503 + Retry-After at once, and the first still gets 202 once released.
func TestBufferFull(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxItems = 3; c.Producer.MaxBufferedRecords = 3 })
	release := make(chan struct{})
	var once sync.Once
	h.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		h.cluster.KeepControl()
		once.Do(func() { h.cluster.SleepControl(func() { <-release }) })
		return nil, nil, false
	})
	batch := func(prefix string, n int) []byte {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, `{"event_id":"%s-%d","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1}`+"\n", prefix, i)
		}
		return []byte(b.String())
	}
	first := make(chan *httptest.ResponseRecorder, 1)
	go func() { first <- h.post(t, "/v1/usage", acmeToken, "application/x-ndjson", batch("a", 3)) }()
	for h.c.client.BufferedProduceRecords() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	w := h.post(t, "/v1/usage", acmeToken, "application/x-ndjson", batch("b", 1))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("second request: status %d Retry-After %q: %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	select {
	case w := <-first:
		t.Fatalf("first request answered %d before the broker acknowledged", w.Code)
	default:
	}
	close(release)
	if w := <-first; w.Code != http.StatusAccepted {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	consume(t, h.kcfg.Brokers, h.kcfg.Topics.Usage, 3)
}

// TestBrokerErrorIsNever2xx makes the broker refuse every produce: the request
// must not get a 2xx.
func TestBrokerErrorIsNever2xx(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Producer.DeliveryTimeout = 2 * time.Second })
	h.cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		h.cluster.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = 87 // INVALID_RECORD: the broker refuses the batch
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	w := h.post(t, "/v1/usage", acmeToken, "application/json",
		[]byte(`{"event_id":"x","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1}`))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d (Retry-After %q), want 503: %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}

func TestShutdownRefusesAndIsIdempotent(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	if err := h.c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	w := h.post(t, "/v1/usage", acmeToken, "application/json",
		[]byte(`{"event_id":"x","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1}`))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d after shutdown", w.Code)
	}
}

func TestConfigValidate(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := c
	bad.MaxItems = 200000
	bad.OTLP.TLS.KeyFile = "/nonexistent/key.pem"
	bad.Attributes.Workflow = []string{""}
	err := bad.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"max_items:", "otlp.tls: cert_file and key_file", "otlp.tls.key_file:", "attributes.workflow[0]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// startCollector starts a collector with cfg on the given Kafka config.
func startCollector(t testing.TB, cfg Config, kcfg kafkax.Config) *Collector {
	t.Helper()
	tel := telemetry.Discard()
	deps := role.Deps{Logger: tel.Logger, Meter: tel.Meter, MeterProvider: tel.MeterProvider,
		Kafka: kcfg, Tenants: testTenants(t), Mux: http.NewServeMux()}
	c, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	fatal := make(chan error, 4)
	if err := c.Start(context.Background(), fatal); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return c
}

func deleteTopics(cl *kgo.Client, topics ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = topics
	for _, tp := range topics {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(tp)
		req.Topics = append(req.Topics, rt)
	}
	req.TimeoutMillis = 5000
	_, _ = req.RequestWith(ctx, cl)
}

// TestRejectionsCountedByReason: every rejection shows in /metrics with its reason.
func TestRejectionsCountedByReason(t *testing.T) {
	h := newHarness(t, nil)
	ok := `{"event_id":"ok","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1}`
	bad := `{"event_id":"bad","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":1,"reasoning_tokens":2}`
	typo := `{"event_id":"typo","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokenz":1}`
	if w := h.post(t, "/v1/usage", acmeToken, "application/json", []byte("["+ok+","+bad+","+typo+","+bad+"]")); w.Code != http.StatusAccepted {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	h.post(t, "/v1/usage", "", "application/json", []byte(ok))
	h.post(t, "/v1/usage", acmeToken, "text/csv", []byte(ok))
	rec := httptest.NewRecorder()
	h.tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	metrics := rec.Body.String()
	for _, want := range []string{
		`tokenmeter_collector_events_accepted_total{kind="usage",`, // 1 accepted
		`tokenmeter_collector_events_rejected_total{kind="usage",`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("missing %s", want)
		}
	}
	lines := map[string]string{}
	for _, l := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(l, "tokenmeter_collector_") {
			continue
		}
		name := l[:strings.IndexByte(l, '{')]
		reason := ""
		if i := strings.Index(l, `reason="`); i >= 0 {
			reason = l[i+8 : i+8+strings.IndexByte(l[i+8:], '"')]
		}
		lines[name+"/"+reason] = l[strings.LastIndexByte(l, ' ')+1:]
	}
	for k, v := range map[string]string{
		"tokenmeter_collector_events_accepted_total/":                         "1",
		"tokenmeter_collector_events_rejected_total/invalid_field":            "2", // two "bad" items
		"tokenmeter_collector_events_rejected_total/unknown_field":            "1",
		"tokenmeter_collector_requests_rejected_total/unauthenticated":        "1",
		"tokenmeter_collector_requests_rejected_total/unsupported_media_type": "1",
	} {
		if lines[k] != v {
			t.Errorf("%s = %q, want %s", k, lines[k], v)
		}
	}
}
