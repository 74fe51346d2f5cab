package collector

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

func onAddr() *string { s := "127.0.0.1:0"; return &s }

// spanTimes: the model call ran 10:00:00.000 to 10:00:01.234567 UTC; the
// event time is the end, cut to milliseconds: 10:00:01.234.
var (
	spanStart = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	spanEnd   = time.Date(2026, 11, 28, 10, 0, 1, 234_567_000, time.UTC)
	eventTime = time.Date(2026, 11, 28, 10, 0, 1, 234_000_000, time.UTC)
)

// emitted is what an app instrumented with the OTel SDK sent, with the
// canonical events a correct collector must derive from it (written by hand).
type emitted struct {
	want []event.UsageEvent
	// rejectedID is the event id of the span that must land on the DLQ.
	rejectedID string
}

// emitGenAISpans sends, through a real OTel SDK tracer provider and the given
// exporter, one span with the current GenAI attribute names, one with the
// older names, one HTTP span without usage (skipped) and one with a cache
// count larger than its input (rejected).
func emitGenAISpans(t *testing.T, exp sdktrace.SpanExporter, app string) emitted {
	t.Helper()
	ctx := context.Background()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(
		attribute.String("service.name", app),
		attribute.String("deployment.environment.name", "prod"),
		attribute.String("tokenmeter.team", "cx"),
	)))
	defer func() { _ = tp.Shutdown(ctx) }()
	tr := tp.Tracer("genai-test")
	var out emitted

	ctx1, root := tr.Start(ctx, "agent run", trace.WithTimestamp(spanStart))
	_, s1 := tr.Start(ctx1, "chat gpt-4o", trace.WithTimestamp(spanStart))
	s1.SetAttributes(
		attribute.String("gen_ai.provider.name", "openai"),
		attribute.String("gen_ai.operation.name", "chat"),
		attribute.String("gen_ai.request.model", "gpt-4o"),
		attribute.String("gen_ai.response.model", "gpt-4o-2024-08-06"),
		attribute.Int("gen_ai.usage.input_tokens", 1000),
		attribute.Int("gen_ai.usage.cache_read.input_tokens", 400),
		attribute.Int("gen_ai.usage.cache_creation.input_tokens", 100),
		attribute.Int("gen_ai.usage.output_tokens", 250),
		attribute.Int("gen_ai.usage.reasoning.output_tokens", 50),
		attribute.String("gen_ai.workflow.name", "support-copilot"),
		attribute.String("gen_ai.agent.name", "triage"),
		attribute.String("gen_ai.conversation.id", "conv-9"),
		attribute.String("user.id", "u-1"),
		attribute.String("session.id", "sess-1"),
	)
	s1.End(trace.WithTimestamp(spanEnd))
	sc1 := s1.SpanContext()

	_, s2 := tr.Start(ctx1, "completion grok", trace.WithTimestamp(spanStart))
	s2.SetAttributes(
		attribute.String("gen_ai.system", "xai"),
		attribute.String("gen_ai.request.model", "grok-3"),
		attribute.Int("gen_ai.usage.prompt_tokens", 30),
		attribute.Int("gen_ai.usage.completion_tokens", 12),
		attribute.String("enduser.id", "u-2"),
		attribute.String("tokenmeter.workflow", "marketing-copy"),
	)
	s2.End(trace.WithTimestamp(spanEnd))
	sc2 := s2.SpanContext()

	_, s3 := tr.Start(ctx1, "GET /tickets", trace.WithTimestamp(spanStart))
	s3.SetAttributes(attribute.String("http.request.method", "GET"))
	s3.End(trace.WithTimestamp(spanEnd))

	_, s4 := tr.Start(ctx1, "chat bad", trace.WithTimestamp(spanStart))
	s4.SetAttributes(
		attribute.String("gen_ai.provider.name", "anthropic"),
		attribute.String("gen_ai.request.model", "claude-sonnet-4"),
		attribute.Int("gen_ai.usage.input_tokens", 100),
		attribute.Int("gen_ai.usage.cache_read.input_tokens", 500),
		attribute.Int("gen_ai.usage.output_tokens", 1),
	)
	s4.End(trace.WithTimestamp(spanEnd))
	out.rejectedID = s4.SpanContext().TraceID().String() + "-" + s4.SpanContext().SpanID().String()
	root.End(trace.WithTimestamp(spanEnd))
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}

	id := func(sc trace.SpanContext) (string, string, string) {
		tid, sid := sc.TraceID().String(), sc.SpanID().String()
		return tid + "-" + sid, tid, sid
	}
	e1, t1, p1 := id(sc1)
	e2, t2, p2 := id(sc2)
	out.want = []event.UsageEvent{
		{EventID: e1, EventTime: eventTime, Tenant: "acme", Provider: "openai", Model: "gpt-4o-2024-08-06", Operation: "chat",
			InputTokens: 1000, CacheReadInputTokens: 400, CacheWriteInputTokens: 100, OutputTokens: 250, ReasoningTokens: 50,
			Workflow: "support-copilot", Team: "cx", UserID: "u-1", Application: app, Environment: "prod", AgentName: "triage",
			TraceID: t1, SpanID: p1, ConversationID: "conv-9", SessionID: "sess-1",
			// The kept attributes attribution rules can match (attributes.<key>).
			Attributes: map[string]string{"deployment.environment.name": "prod", "gen_ai.agent.name": "triage",
				"gen_ai.workflow.name": "support-copilot", "service.name": app, "tokenmeter.team": "cx"}},
		// Older names: gen_ai.system "xai" is normalised to x_ai; prompt/completion tokens.
		{EventID: e2, EventTime: eventTime, Tenant: "acme", Provider: "x_ai", Model: "grok-3",
			InputTokens: 30, OutputTokens: 12, Workflow: "marketing-copy", Team: "cx", UserID: "u-2", Application: app, Environment: "prod",
			TraceID: t2, SpanID: p2, Attributes: map[string]string{"deployment.environment.name": "prod", "service.name": app,
				"tokenmeter.team": "cx", "tokenmeter.workflow": "marketing-copy"}},
	}
	return out
}

func checkTopic(t *testing.T, brokers []string, topic string, want []event.UsageEvent) {
	t.Helper()
	recs := consume(t, brokers, topic, len(want))
	got := map[string]*kgo.Record{}
	for _, r := range recs {
		var ev event.UsageEvent
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		got[ev.EventID] = r
	}
	for _, w := range want {
		r := got[w.EventID]
		if r == nil {
			t.Errorf("event %s missing from %s", w.EventID, topic)
			continue
		}
		wantJSON, _ := json.Marshal(w)
		if string(r.Value) != string(wantJSON) {
			t.Errorf("event %s\n got %s\nwant %s", w.EventID, r.Value, wantJSON)
		}
		if wk := w.Tenant + "/" + w.Workflow; string(r.Key) != wk {
			t.Errorf("key %q, want %q", r.Key, wk)
		}
	}
}

func httpExporter(t *testing.T, addr, token string) sdktrace.SpanExporter {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(addr), otlptracehttp.WithInsecure(),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + token}),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

func grpcExporter(t *testing.T, addr, token string) sdktrace.SpanExporter {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithHeaders(map[string]string{"authorization": "Bearer " + token}),
		otlptracegrpc.WithCompressor("gzip"),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

func TestOTLPFromSDKExporters(t *testing.T) {
	for _, proto := range []string{"http", "grpc"} {
		t.Run(proto, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.OTLP.GRPCListen, c.OTLP.HTTPListen = onAddr(), onAddr() })
			var exp sdktrace.SpanExporter
			if proto == "http" {
				exp = httpExporter(t, h.c.OTLPHTTPAddr, acmeToken)
			} else {
				exp = grpcExporter(t, h.c.OTLPGRPCAddr, acmeToken)
			}
			em := emitGenAISpans(t, exp, "support-bot-"+proto)
			checkTopic(t, h.kcfg.Brokers, h.kcfg.Topics.Usage, em.want)
			checkDLQ(t, h.kcfg.Brokers, h.kcfg.Topics.DLQ, em.rejectedID)
		})
	}
}

// TestOTLPEndToEndRealKafka: OTel SDK exporter -> collector -> topic on the
// real Apache Kafka broker (KAFKA_BROKERS), each event once, right tenant.
func TestOTLPEndToEndRealKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	var kcfg kafkax.Config
	kcfg.Brokers = brokers
	prefix := testenv.TopicPrefix(t)
	kcfg.Topics.Usage, kcfg.Topics.Outcomes = prefix+"usage", prefix+"outcomes"
	kcfg.Topics.Priced, kcfg.Topics.DLQ, kcfg.Topics.Alerts = prefix+"priced", prefix+"dlq", prefix+"alerts"
	kcfg.Topics.Partitions = 3
	kcfg.ApplyDefaults()
	admin, err := kgo.NewClient(kcfg.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, admin, kcfg.Topics, nil, kcfg.Topics.Usage, kcfg.Topics.Outcomes, kcfg.Topics.DLQ); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl, err := kgo.NewClient(kcfg.ClientOpts()...)
		if err == nil {
			defer cl.Close()
			deleteTopics(cl, kcfg.Topics.Usage, kcfg.Topics.Outcomes, kcfg.Topics.DLQ)
		}
	})

	cfg := Config{}
	cfg.OTLP.GRPCListen, cfg.OTLP.HTTPListen = onAddr(), onAddr()
	cfg.ApplyDefaults()
	h := startCollector(t, cfg, kcfg)
	em := emitGenAISpans(t, httpExporter(t, h.OTLPHTTPAddr, acmeToken), "e2e-http")
	em2 := emitGenAISpans(t, grpcExporter(t, h.OTLPGRPCAddr, acmeToken), "e2e-grpc")
	checkTopic(t, brokers, kcfg.Topics.Usage, append(em.want, em2.want...))
	checkDLQ(t, brokers, kcfg.Topics.DLQ, em.rejectedID, em2.rejectedID)
}

// checkDLQ: each rejected span is on the DLQ once, with its reason and its
// original span (as OTLP JSON) that decodes back to the same span id.
func checkDLQ(t *testing.T, brokers []string, topic string, ids ...string) {
	t.Helper()
	recs := consume(t, brokers, topic, len(ids))
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for _, r := range recs {
		var d event.DLQRecord
		if err := json.Unmarshal(r.Value, &d); err != nil {
			t.Fatal(err)
		}
		if !want[d.EventID] || d.Stage != "collector" || d.Reason != "invalid_usage" || d.Tenant != "acme" ||
			!strings.Contains(d.Detail, "cache_read_input_tokens") {
			t.Errorf("dlq record %+v", d)
		}
		delete(want, d.EventID)
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(d.Original)
		if err != nil || td.SpanCount() != 1 {
			t.Fatalf("original: %v (%d spans)", err, td.SpanCount())
		}
		sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		if got := sp.TraceID().String() + "-" + sp.SpanID().String(); got != d.EventID {
			t.Errorf("original span %s, want %s", got, d.EventID)
		}
	}
	if len(want) != 0 {
		t.Errorf("not on the DLQ: %v", want)
	}
}

func TestOTLPAuthAndErrors(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.OTLP.GRPCListen, c.OTLP.HTTPListen = onAddr(), onAddr() })
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{2})
	sp.SetEndTimestamp(1)
	req := ptraceotlp.NewExportRequestFromTraces(td)
	body, _ := req.MarshalProto()

	post := func(ct, token string, b []byte, enc ...string) *http.Response {
		r, _ := http.NewRequest(http.MethodPost, "http://"+h.c.OTLPHTTPAddr+"/v1/traces", strings.NewReader(string(b)))
		r.Header.Set("Content-Type", ct)
		if len(enc) > 0 {
			r.Header.Set("Content-Encoding", enc[0])
		}
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	if r := post("application/x-protobuf", "", body); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.StatusCode)
	}
	if r := post("application/x-protobuf", "wrong", body); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", r.StatusCode)
	}
	if r := post("text/plain", acmeToken, body); r.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d", r.StatusCode)
	}
	if r := post("application/x-protobuf", acmeToken, []byte("\xff\xff\xff")); r.StatusCode != http.StatusBadRequest {
		t.Errorf("garbage: %d", r.StatusCode)
	}
	// A span without usage is skipped; the export itself succeeds.
	if r := post("application/x-protobuf", acmeToken, body); r.StatusCode != http.StatusOK {
		t.Errorf("no-usage span: %d", r.StatusCode)
	}
	zw, _ := zstd.NewWriter(nil)
	if r := post("application/x-protobuf", acmeToken, zw.EncodeAll(body, nil), "zstd"); r.StatusCode != http.StatusOK {
		t.Errorf("zstd body: %d", r.StatusCode)
	}
	_ = zw.Close()

	conn, err := grpc.NewClient(h.c.OTLPGRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	_, err = client.Export(context.Background(), req)
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("grpc without token: %v", err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+globexToken)
	resp, err := client.Export(ctx, req)
	if err != nil || resp.PartialSuccess().RejectedSpans() != 0 {
		t.Errorf("grpc with token: %v %v", err, resp)
	}
	// A span whose reasoning exceeds its output: partial success naming it.
	sp.Attributes().PutStr("gen_ai.provider.name", "openai")
	sp.Attributes().PutStr("gen_ai.request.model", "o3")
	sp.Attributes().PutInt("gen_ai.usage.output_tokens", 10)
	sp.Attributes().PutInt("gen_ai.usage.reasoning.output_tokens", 11)
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(spanEnd))
	resp, err = client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	if err != nil || resp.PartialSuccess().RejectedSpans() != 1 ||
		!strings.Contains(resp.PartialSuccess().ErrorMessage(), "reasoning_tokens") {
		t.Errorf("rejected span: err %v, rejected %d, message %q", err, resp.PartialSuccess().RejectedSpans(), resp.PartialSuccess().ErrorMessage())
	}
}

// TestOTLPExportLargerThanBuffer: an export that could never fit the
// producer buffer is refused as permanent (413 / InvalidArgument), not 503,
// so the exporter does not retry it forever.
func TestOTLPExportLargerThanBuffer(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.OTLP.HTTPListen = onAddr()
		c.MaxItems, c.Producer.MaxBufferedRecords = 2, 2
	})
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < 3; i++ {
		sp := spans.AppendEmpty()
		sp.SetTraceID([16]byte{9})
		sp.SetSpanID([8]byte{byte(i + 1)})
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(spanEnd))
		sp.Attributes().PutStr("gen_ai.provider.name", "openai")
		sp.Attributes().PutStr("gen_ai.request.model", "gpt-4o")
		sp.Attributes().PutInt("gen_ai.usage.input_tokens", 1)
	}
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	r, _ := http.NewRequest(http.MethodPost, "http://"+h.c.OTLPHTTPAddr+"/v1/traces", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/x-protobuf")
	r.Header.Set("Authorization", "Bearer "+acmeToken)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}
