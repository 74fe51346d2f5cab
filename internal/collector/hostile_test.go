package collector

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/telemetry"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// Regression tests for the attacks of issue 17 that reach the collector.
// Each one failed (crash, 202 of a poison record, 503 forever, silent
// collision) before the limits existed.

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func errorBody(t *testing.T, w *httptest.ResponseRecorder) ErrorResponse {
	t.Helper()
	var e ErrorResponse
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("%d %q: %v", w.Code, w.Body.String(), err)
	}
	return e
}

// Issue 17 item 1: 8M `[` in a 7.8 KB gzip body overflowed the parser's
// goroutine stack (fatal error, not recoverable): the whole process died.
func TestHostileDeepNestingIsRefusedBeforeParsing(t *testing.T) {
	h := newHarness(t, nil)
	body := gzipped(t, bytes.Repeat([]byte("["), 8_000_000))
	if len(body) > 16<<10 {
		t.Fatalf("attack body is %d bytes; meant to be tiny", len(body))
	}
	w := h.post(t, "/v1/usage", acmeToken, "application/json", body, withHeader("Content-Encoding", "gzip"))
	if w.Code != http.StatusBadRequest {
		t.Fatalf("8M [: %d %s", w.Code, w.Body)
	}
	if e := errorBody(t, w); e.Error != reqLimit || !strings.Contains(e.Message, "limits.max_depth (32)") {
		t.Errorf("8M [: %+v", e)
	}
	// The same attack inside an otherwise valid event, in every format.
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	ev := `{"event_id":"d","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"m","input_tokens":1,"output_tokens":1,"response":` + deep + `}`
	for _, c := range []struct{ ct, body string }{
		{"application/json", ev},
		{"application/cloudevents+json", `{"specversion":"1.0","id":"x","source":"s","type":"t","data":` + ev + `}`},
		{"application/cloudevents-batch+json", `[{"specversion":"1.0","id":"x","source":"s","type":"t","data":` + ev + `}]`},
	} {
		w := h.post(t, "/v1/usage", acmeToken, c.ct, []byte(c.body))
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "limits.max_depth (32)") {
			t.Errorf("%s: %d %s", c.ct, w.Code, w.Body)
		}
	}
	// NDJSON: the deep line is rejected alone, the good line is accepted.
	good := `{"event_id":"g","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"m","input_tokens":1,"output_tokens":1}`
	w = h.post(t, "/v1/usage", acmeToken, "application/x-ndjson", []byte(strings.Repeat("[", 100000)+"\n"+good+"\n"))
	if r := decodeResp(t, w); w.Code != http.StatusAccepted || r.Accepted != 1 || r.Rejected != 1 || r.Errors[0].Reason != "limit_exceeded" ||
		r.Errors[0].Problems[0].Limit != limits.BreachDepth {
		t.Errorf("ndjson: %d %s", w.Code, w.Body)
	}
	consume(t, h.kcfg.Brokers, h.kcfg.Topics.Usage, 1)
}

// nestedOTLP is an ExportTraceServiceRequest with one span whose attribute
// value nests levels kvlist_values deep, built outside-in in linear time.
func nestedOTLP(levels int) []byte {
	// Wrappers from the outside in: field number of each length-delimited level.
	fields := []protowire.Number{1, 2, 2, 9, 2} // request.resource_spans, .scope_spans, .spans, span.attributes, kv.value
	for i := 0; i < levels; i++ {
		fields = append(fields, 6, 1, 2) // any.kvlist_value, kvlist.values, kv.value
	}
	inner := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("x")) // any.string_value
	sizes := make([]int, len(fields)+1)
	sizes[len(fields)] = len(inner)
	for i := len(fields) - 1; i >= 0; i-- {
		sizes[i] = protowire.SizeTag(fields[i]) + protowire.SizeBytes(sizes[i+1])
	}
	out := make([]byte, 0, sizes[0])
	for i, f := range fields {
		out = protowire.AppendTag(out, f, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(sizes[i+1]))
	}
	return append(out, inner...)
}

// Item 1 on the OTLP receivers: nested AnyValues in JSON and protobuf, on
// OTLP/HTTP and OTLP/gRPC, are refused before the OTLP decoder recurses.
func TestHostileDeepOTLPIsRefused(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.OTLP.GRPCListen, c.OTLP.HTTPListen = onAddr(), onAddr() })
	post := func(ct string, b []byte) (int, string) {
		r, _ := http.NewRequest(http.MethodPost, "http://"+h.c.OTLPHTTPAddr+"/v1/traces", bytes.NewReader(b))
		r.Header.Set("Content-Type", ct)
		r.Header.Set("Authorization", "Bearer "+acmeToken)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.String()
	}
	deepProto := nestedOTLP(300_000)
	if code, body := post("application/x-protobuf", deepProto); code != http.StatusBadRequest || !strings.Contains(body, "max_depth") {
		t.Errorf("deep protobuf: %d %q", code, body)
	}
	deepJSON := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":` +
		strings.Repeat(`{"kvlistValue":{"values":[{"key":"k","value":`, 100000) + `{"stringValue":"x"}` +
		strings.Repeat(`}]}}`, 100000) + `}]}]}]}]}`
	if code, body := post("application/json", []byte(deepJSON)); code != http.StatusBadRequest || !strings.Contains(body, "max_depth") {
		t.Errorf("deep JSON: %d %.200q", code, body)
	}
	// A shallow nested value still decodes (the bound is not too tight).
	if code, body := post("application/x-protobuf", nestedOTLP(3)); code != http.StatusOK {
		t.Errorf("3 levels: %d %q", code, body)
	}
	// gRPC: the same bytes through the proto codec.
	conn, err := grpc.NewClient(h.c.OTLPGRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(nestedOTLP(20)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = grpcAuth(ctx, acmeToken)
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, req)
	if status.Code(err) == codes.OK || !strings.Contains(err.Error(), "max_depth") {
		t.Errorf("gRPC 20 levels: %v", err)
	}
}

// Item 2: a 200 KB workflow plus a 350 KB conversation id (the workflow is
// in the key too) was accepted with 202 and then stalled the processor's
// transactions forever with MESSAGE_TOO_LARGE. Now each oversized field is
// named with its limit, and with raised string limits the record size
// itself (key + value) is checked.
func TestHostileOversizedRecordIsRefusedWithItsFields(t *testing.T) {
	h := newHarness(t, nil)
	ev := fmt.Sprintf(`{"event_id":"big","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"m","input_tokens":1,"output_tokens":1,"workflow":%q,"conversation_id":%q}`,
		strings.Repeat("w", 200<<10), strings.Repeat("c", 350<<10))
	w := h.post(t, "/v1/usage", acmeToken, "application/json", []byte(ev))
	r := decodeResp(t, w)
	if w.Code != http.StatusBadRequest || r.Rejected != 1 || len(r.Errors[0].Problems) != 2 {
		t.Fatalf("%d %.300s", w.Code, w.Body)
	}
	for i, want := range []string{"workflow", "conversation_id"} {
		p := r.Errors[0].Problems[i]
		if p.Field != want || p.Limit != limits.BreachString || !strings.Contains(p.Reason, "over limits.max_string_bytes (1024)") {
			t.Errorf("problem %d: %+v", i, p)
		}
	}

	wide := newHarnessDeps(t, nil, func(d *role.Deps) { d.Limits = limits.Limits{MaxStringBytes: 1 << 20} })
	w = wide.post(t, "/v1/usage", acmeToken, "application/json", []byte(ev))
	r = decodeResp(t, w)
	if w.Code != http.StatusBadRequest || r.Rejected != 1 || r.Errors[0].Problems[0].Limit != limits.BreachRecord ||
		!strings.Contains(r.Errors[0].Problems[0].Reason, "over limits.max_record_bytes (262144)") {
		t.Errorf("record size: %d %.300s", w.Code, w.Body)
	}
}

// Item 5: a request the broker refuses for its size (here a topic with a
// small max.message.bytes) was answered 503 "retry": clients retried
// forever. It is a 413 now, on kfake and on Apache Kafka.
func TestHostileBrokerSizeRefusalIs413(t *testing.T) {
	h := newHarness(t, nil)
	checkBrokerSizeRefusal(t, h.kcfg, func(body []byte) int {
		return h.post(t, "/v1/usage", acmeToken, "application/json", body).Code
	})
}

func TestHostileBrokerSizeRefusalIs413RealKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	var kcfg kafkax.Config
	kcfg.Brokers = brokers
	prefix := testenv.TopicPrefix(t)
	kcfg.Topics.Usage, kcfg.Topics.Outcomes = prefix+"usage", prefix+"outcomes"
	kcfg.Topics.Priced, kcfg.Topics.DLQ, kcfg.Topics.Alerts = prefix+"priced", prefix+"dlq", prefix+"alerts"
	kcfg.Topics.Partitions = 1
	kcfg.ApplyDefaults()
	admin, err := kgo.NewClient(kcfg.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, admin, kcfg.Topics, nil, kcfg.Topics.Usage); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTopics(admin, kcfg.Topics.Usage) })
	cfg := Config{}
	cfg.OTLP.GRPCListen, cfg.OTLP.HTTPListen = off(), off()
	cfg.ApplyDefaults()
	tel := telemetry.Discard()
	c, err := New(cfg, role.Deps{Logger: tel.Logger, Meter: tel.Meter, MeterProvider: tel.MeterProvider,
		Kafka: kcfg, Tenants: testTenants(t), Mux: http.NewServeMux()})
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return testNow }
	if err := c.Start(ctx, make(chan error, 4)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Shutdown(context.Background()) })
	checkBrokerSizeRefusal(t, kcfg, func(body []byte) int {
		r := httptest.NewRequest(http.MethodPost, "/v1/usage", bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+acmeToken)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		c.deps.Mux.ServeHTTP(w, r)
		return w.Code
	})
}

// checkBrokerSizeRefusal lowers the usage topic's max.message.bytes to 2000
// and posts a 3 KB (incompressible) event: the broker refuses it.
func checkBrokerSizeRefusal(t *testing.T, kcfg kafkax.Config, post func([]byte) int) {
	t.Helper()
	cl, err := kgo.NewClient(kcfg.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	small := "2000"
	resp, err := kadm.NewClient(cl).AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &small}}, kcfg.Topics.Usage)
	if err == nil {
		for _, r := range resp {
			if r.Err != nil {
				err = fmt.Errorf("%s: %w %s", r.Name, r.Err, r.ErrMessage)
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	ev := fmt.Sprintf(`{"event_id":"mid","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"m","input_tokens":1,"output_tokens":1,"attributes":{"a":%q,"b":%q,"c":%q}}`,
		randomHex(t, 500), randomHex(t, 500), randomHex(t, 500)) // incompressible: the producer compresses batches
	// The new topic config reaches the partition leader within moments on
	// Apache Kafka; until then the event is accepted (202), never a 503.
	deadline := time.Now().Add(60 * time.Second)
	for {
		code := post([]byte(ev))
		if code == http.StatusRequestEntityTooLarge {
			return
		}
		if code != http.StatusAccepted || time.Now().After(deadline) {
			t.Fatalf("broker refused for size: %d (want 413, never 503)", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Items 4 and 12 at the edge: counts over the per-event maximum, invalid
// UTF-8 (was silently turned into U+FFFD, so distinct ids collided) and
// repeated keys (the last won) are refused with the field and the limit.
func TestHostileFieldsRefusedWithLimit(t *testing.T) {
	h := newHarness(t, nil)
	base := `"event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"m","input_tokens":1`
	for _, c := range []struct {
		name, item, field, limit string
	}{
		{"max output_tokens", `{"event_id":"t1",` + base + `,"output_tokens":9223372036854775807}`, "output_tokens", limits.BreachTokens},
		{"cache overflow", `{"event_id":"t2","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"m","input_tokens":5,"output_tokens":1,` +
			`"cache_read_input_tokens":9223372036854775807,"cache_write_input_tokens":9223372036854775807}`, "cache_read_input_tokens", limits.BreachTokens},
		{"invalid utf-8", "{\"event_id\":\"id-\xff\"," + base + `,"output_tokens":1}`, "event_id", limits.BreachUTF8},
		{"escaped lone surrogate", `{"event_id":"id-\ud800",` + base + `,"output_tokens":1}`, "event_id", limits.BreachUTF8},
		{"repeated key", `{"event_id":"t3",` + base + `,"output_tokens":1,"output_tokens":100}`, "output_tokens", limits.BreachDuplicate},
		{"repeated escaped key", `{"event_id":"t4",` + base + `,"output_tokens":1,"output_\u0074okens":100}`, "output_tokens", limits.BreachDuplicate},
	} {
		w := h.post(t, "/v1/usage", acmeToken, "application/json", []byte(c.item))
		r := decodeResp(t, w)
		if w.Code != http.StatusBadRequest || r.Rejected != 1 {
			t.Errorf("%s: %d %s", c.name, w.Code, w.Body)
			continue
		}
		found := false
		for _, p := range r.Errors[0].Problems {
			if p.Field == c.field && p.Limit == c.limit {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no problem on %s with limit %s: %+v", c.name, c.field, c.limit, r.Errors[0].Problems)
		}
	}
	// Breaches are counted per limit: a closed label set.
	rec := httptest.NewRecorder()
	h.tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	got := map[string]string{}
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "tokenmeter_collector_limit_breaches_total{") && strings.Contains(l, `path="http"`) {
			i := strings.Index(l, `limit="`) + len(`limit="`)
			got[l[i:i+strings.IndexByte(l[i:], '"')]] = l[strings.LastIndexByte(l, ' ')+1:]
		}
	}
	want := map[string]string{limits.BreachTokens: "3", limits.BreachUTF8: "2", limits.BreachDuplicate: "2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("limit breaches counted %v, want %v", got, want)
	}
}

func grpcAuth(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
