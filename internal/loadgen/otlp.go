package loadgen

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// otlpApp is one simulated instrumented application family: it records its
// calls as GenAI spans with the OpenTelemetry Go SDK and exports them with
// the SDK's OTLP exporter. PathOTLPHTTP uses the current semantic-convention
// names (gen_ai.provider.name, gen_ai.usage.input_tokens, ...) and the
// OTLP/HTTP protobuf exporter; PathOTLPGRPC uses the older names
// (gen_ai.system, gen_ai.usage.prompt_tokens, ...) as instrumentations in the
// field still do, and the OTLP/gRPC exporter.
type otlpApp struct {
	path     Path
	newNames bool
	env      string
	sum      *Summary
	stats    *PathStats
	exp      sdktrace.SpanExporter
	ended    *endedSpans

	mu        sync.Mutex
	providers map[string]*sdktrace.TracerProvider // by service.name
}

func newOTLPApp(ctx context.Context, cfg *Config, p Path, sum *Summary) (*otlpApp, error) {
	a := &otlpApp{path: p, newNames: p == PathOTLPHTTP, env: cfg.Environment, sum: sum,
		stats: sum.path(p), ended: &endedSpans{}, providers: map[string]*sdktrace.TracerProvider{}}
	auth := map[string]string{"Authorization": "Bearer " + cfg.Token}
	// The SDK exporters retry 429/503 (and gRPC's retryable codes) themselves,
	// honouring Retry-After / RetryInfo; the budget matches the HTTP paths'.
	wait := time.Duration(cfg.MaxAttempts) * 2 * time.Second
	var err error
	switch p {
	case PathOTLPHTTP:
		a.exp, err = otlptracehttp.New(ctx,
			otlptracehttp.WithEndpoint(cfg.OTLPHTTP), otlptracehttp.WithInsecure(),
			otlptracehttp.WithHeaders(auth), otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
			otlptracehttp.WithTimeout(cfg.RequestTimeout),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: true, InitialInterval: 100 * time.Millisecond,
				MaxInterval: 5 * time.Second, MaxElapsedTime: wait}))
	case PathOTLPGRPC:
		auth = map[string]string{"authorization": "Bearer " + cfg.Token}
		a.exp, err = otlptracegrpc.New(ctx,
			otlptracegrpc.WithEndpoint(cfg.OTLPGRPC), otlptracegrpc.WithInsecure(),
			otlptracegrpc.WithHeaders(auth), otlptracegrpc.WithTimeout(cfg.RequestTimeout),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 100 * time.Millisecond,
				MaxInterval: 5 * time.Second, MaxElapsedTime: wait}))
	default:
		return nil, fmt.Errorf("loadgen: %s is not an OTLP path", p)
	}
	if err != nil {
		return nil, fmt.Errorf("loadgen: %s exporter: %w", p, err)
	}
	return a, nil
}

// provider returns the tracer provider of one simulated service: the
// resource (service.name, deployment environment) is per provider.
func (a *otlpApp) provider(service string) *sdktrace.TracerProvider {
	a.mu.Lock()
	defer a.mu.Unlock()
	if tp, ok := a.providers[service]; ok {
		return tp
	}
	envKey := "deployment.environment.name"
	if !a.newNames {
		envKey = "deployment.environment"
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", service),
		attribute.String("service.version", "1.4.2"),
		attribute.String(envKey, a.env),
		attribute.String("telemetry.sdk.language", "go"),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithIDGenerator(plannedIDs{}),
		sdktrace.WithSpanProcessor(a.ended),
	)
	a.providers[service] = tp
	return tp
}

// flush records the requests' spans and exports them in one call, then
// records the collector's verdict for every call.
func (a *otlpApp) flush(ctx context.Context, reqs []*Request) {
	var calls []*Call
	for _, r := range reqs {
		tracer := a.provider(r.App).Tracer("tokenmeter.dev/loadgen/genai", trace.WithInstrumentationVersion("0.1.0"))
		parent := ctx
		var root trace.Span
		if r.RootName != "" {
			attrs := []attribute.KeyValue{attribute.String(a.workflowKey(), r.Workflow)}
			if r.Workflow == WorkflowAgent {
				attrs = append(attrs, attribute.String("gen_ai.operation.name", "invoke_agent"),
					attribute.String("gen_ai.agent.name", r.Workflow))
			}
			parent, root = tracer.Start(withPlannedIDs(ctx, r.TraceID, r.RootSpanID), r.RootName,
				trace.WithTimestamp(r.RootStart), trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
		}
		for i := range r.Calls {
			c := &r.Calls[i]
			e := &c.Event
			_, sp := tracer.Start(withPlannedIDs(parent, e.TraceID, e.SpanID), e.Operation+" "+e.Model,
				trace.WithTimestamp(c.Start), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(a.attributes(c)...))
			sp.End(trace.WithTimestamp(e.EventTime))
			calls = append(calls, c)
		}
		if root != nil {
			root.End(trace.WithTimestamp(r.At))
		}
	}
	spans := a.ended.take()
	rejected, msg, err := exportCapturing(ctx, a.exp, spans)
	errMsg := ""
	if err != nil {
		errMsg = firstLine([]byte(err.Error()))
	}
	a.sum.request(a.stats, 0, errMsg)
	verdicts := otlpVerdicts(calls, rejected, msg, err)
	for i, c := range calls {
		a.sum.usage(c, verdicts[i])
	}
}

// otlpVerdicts spreads an export's answer over its calls. OTLP partial
// success only says how many spans were rejected, not which: the
// deliberately bad calls are assumed first (they are what the collector
// should reject); any further rejections are charged to the last good calls
// and so leave the expected totals.
func otlpVerdicts(calls []*Call, rejected int64, msg string, err error) []result {
	out := make([]result, len(calls))
	if err != nil {
		for i := range out {
			out[i].failed = true
		}
		return out
	}
	reason := describePartialSuccess(msg)
	for i := range out {
		out[i].accepted = true
	}
	for i, c := range calls {
		if rejected == 0 {
			break
		}
		if c.Bad != "" {
			out[i] = result{reason: reason}
			rejected--
		}
	}
	for i := len(calls) - 1; i >= 0 && rejected > 0; i-- {
		if out[i].accepted {
			out[i] = result{reason: reason}
			rejected--
		}
	}
	return out
}

func (a *otlpApp) workflowKey() string {
	if a.newNames {
		return "gen_ai.workflow.name"
	}
	return "tokenmeter.workflow"
}

// attributes are the GenAI span attributes of one call, in the app's naming generation.
func (a *otlpApp) attributes(c *Call) []attribute.KeyValue {
	e := &c.Event
	str := func(kv *[]attribute.KeyValue, k, v string) {
		if v != "" {
			*kv = append(*kv, attribute.String(k, v))
		}
	}
	num := func(kv *[]attribute.KeyValue, k string, v int64) {
		if v != 0 {
			*kv = append(*kv, attribute.Int64(k, v))
		}
	}
	var kv []attribute.KeyValue
	str(&kv, "gen_ai.operation.name", e.Operation)
	str(&kv, "gen_ai.request.model", e.Model)
	if a.newNames {
		str(&kv, "gen_ai.provider.name", e.Provider)
		str(&kv, "gen_ai.response.model", e.Model)
		kv = append(kv, attribute.Int64("gen_ai.usage.input_tokens", e.InputTokens),
			attribute.Int64("gen_ai.usage.output_tokens", e.OutputTokens))
		num(&kv, "gen_ai.usage.cache_read.input_tokens", e.CacheReadInputTokens)
		num(&kv, "gen_ai.usage.cache_creation.input_tokens", e.CacheWriteInputTokens)
		num(&kv, "gen_ai.usage.reasoning.output_tokens", e.ReasoningTokens)
		str(&kv, "gen_ai.workflow.name", e.Workflow)
		str(&kv, "gen_ai.prompt.name", e.PromptTemplate)
		str(&kv, "gen_ai.prompt.version", e.PromptVersion)
		str(&kv, "user.id", e.UserID)
		if e.Provider == "openai" {
			str(&kv, "openai.response.service_tier", "default")
		}
	} else {
		str(&kv, "gen_ai.system", e.Provider)
		kv = append(kv, attribute.Int64("gen_ai.usage.prompt_tokens", e.InputTokens),
			attribute.Int64("gen_ai.usage.completion_tokens", e.OutputTokens))
		num(&kv, "gen_ai.usage.cache_read_input_tokens", e.CacheReadInputTokens)
		num(&kv, "gen_ai.usage.cache_creation_input_tokens", e.CacheWriteInputTokens)
		num(&kv, "gen_ai.usage.reasoning_tokens", e.ReasoningTokens)
		str(&kv, "tokenmeter.workflow", e.Workflow)
		str(&kv, "tokenmeter.prompt_template", e.PromptTemplate)
		str(&kv, "tokenmeter.prompt_version", e.PromptVersion)
		str(&kv, "enduser.id", e.UserID)
	}
	str(&kv, "tokenmeter.team", e.Team)
	str(&kv, "gen_ai.agent.name", e.AgentName)
	str(&kv, "gen_ai.conversation.id", e.ConversationID)
	str(&kv, "session.id", e.SessionID)
	return kv
}

func (a *otlpApp) shutdown(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, tp := range a.providers {
		_ = tp.Shutdown(ctx) // only stops the in-memory span processor
	}
	_ = a.exp.Shutdown(ctx)
}

// endedSpans is a span processor that keeps ended spans until the app
// exports them itself, so every export's answer is known (the SDK's batch
// processor exports in the background and reports failures only to the
// global error handler, without saying which spans they concern).
type endedSpans struct {
	mu    sync.Mutex
	spans []sdktrace.ReadOnlySpan
}

func (p *endedSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p *endedSpans) OnEnd(s sdktrace.ReadOnlySpan) {
	p.mu.Lock()
	p.spans = append(p.spans, s)
	p.mu.Unlock()
}
func (p *endedSpans) Shutdown(context.Context) error   { return nil }
func (p *endedSpans) ForceFlush(context.Context) error { return nil }

func (p *endedSpans) take() []sdktrace.ReadOnlySpan {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.spans
	p.spans = nil
	return s
}

// plannedIDs is an IDGenerator that uses the trace and span ids the planner
// chose (carried in the context), so spans are reproducible per seed and
// run id and outcomes can name the trace that produced them.
type plannedIDs struct{}

type idsKey struct{}

type ids struct {
	trace trace.TraceID
	span  trace.SpanID
}

func withPlannedIDs(ctx context.Context, traceHex, spanHex string) context.Context {
	var v ids
	if b, err := hex.DecodeString(traceHex); err == nil && len(b) == 16 {
		copy(v.trace[:], b)
	}
	if b, err := hex.DecodeString(spanHex); err == nil && len(b) == 8 {
		copy(v.span[:], b)
	}
	return context.WithValue(ctx, idsKey{}, v)
}

func (plannedIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	v, _ := ctx.Value(idsKey{}).(ids)
	if !v.trace.IsValid() {
		_, _ = crand.Read(v.trace[:])
	}
	if !v.span.IsValid() {
		_, _ = crand.Read(v.span[:])
	}
	return v.trace, v.span
}

func (plannedIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	v, _ := ctx.Value(idsKey{}).(ids)
	if !v.span.IsValid() {
		_, _ = crand.Read(v.span[:])
	}
	return v.span
}

// partialPattern matches the error the SDK exporters return for an OTLP
// partial success: the export was received, some spans were rejected.
var partialPattern = regexp.MustCompile(`^OTLP partial success: (.*) \((\d+) spans rejected\)$`)

// exportCapturing exports spans and returns how many the receiver rejected
// by partial success, and its message. The SDK reports a partial success as
// an error from ExportSpans; it is not a failed export.
func exportCapturing(ctx context.Context, exp sdktrace.SpanExporter, spans []sdktrace.ReadOnlySpan) (int64, string, error) {
	if len(spans) == 0 {
		return 0, "", nil
	}
	err := exp.ExportSpans(ctx, spans)
	if err == nil {
		return 0, "", nil
	}
	var rejected int64
	var msgs []string
	for _, line := range strings.Split(strings.TrimPrefix(err.Error(), "traces export: "), "\n") {
		m := partialPattern.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			return 0, "", err // a real failure (possibly beside a partial success)
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		rejected += n
		if msg := strings.TrimSpace(m[1]); msg != "" && msg != "empty message" {
			msgs = append(msgs, msg)
		}
	}
	return rejected, strings.Join(msgs, "; "), nil
}

// spanRejection matches one rejection in the collector's partial-success
// message: "span <id>: <reason>: <field>: <why>".
var spanRejection = regexp.MustCompile(`span [0-9a-fA-F-]+: ([a-z_]+): ([a-z_.]+): `)

// describePartialSuccess turns a partial-success message into a reason that
// groups equal rejections ("invalid_usage (cache_read_input_tokens)").
func describePartialSuccess(msg string) string {
	if m := spanRejection.FindStringSubmatch(msg); m != nil {
		return m[1] + " (" + m[2] + ")"
	}
	if msg == "" {
		return "otlp partial success"
	}
	return "otlp partial success: " + firstLine([]byte(msg))
}
