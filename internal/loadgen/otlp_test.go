package loadgen

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/ingest"
)

// otlpReceiver decodes OTLP exports with pdata and maps spans with the
// collector's own GenAI mapper, answering partial success for rejected
// spans the way the collector does.
type otlpReceiver struct {
	t      *testing.T
	mapper *ingest.SpanMapper

	mu        sync.Mutex
	auth      map[string]int
	usage     map[string]*Totals
	spanKeys  map[string]bool
	resKeys   map[string]bool
	services  map[string]bool
	rejected  int
	usageByTr map[string][]ptrace.Span // usage spans by trace id
	rootOfTr  map[string]ptrace.Span   // spans without usage by trace id
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	return &otlpReceiver{t: t, mapper: ingest.NewSpanMapper(ingest.DefaultAttributeSources()),
		auth: map[string]int{}, usage: map[string]*Totals{}, spanKeys: map[string]bool{}, resKeys: map[string]bool{},
		services: map[string]bool{}, usageByTr: map[string][]ptrace.Span{}, rootOfTr: map[string]ptrace.Span{}}
}

func (r *otlpReceiver) export(td ptrace.Traces, auth string) ptraceotlp.ExportResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.auth[auth]++
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		for k, v := range rs.Resource().Attributes().All() {
			r.resKeys[k] = true
			if k == "service.name" {
				r.services[v.Str()] = true
			}
		}
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				usage := false
				for key := range sp.Attributes().All() {
					r.spanKeys[key] = true
					usage = usage || strings.HasPrefix(key, "gen_ai.usage.")
				}
				tid := sp.TraceID().String()
				if usage {
					r.usageByTr[tid] = append(r.usageByTr[tid], sp)
				} else {
					r.rootOfTr[tid] = sp
				}
			}
		}
	}
	var rejected int
	var details []string
	r.mapper.MapTraces(td, "acme", time.Now(), func(res *ingest.SpanResult) {
		switch {
		case res.Skipped:
		case res.Err != nil:
			rejected++
			details = append(details, fmt.Sprintf("span %s: %s", res.Event.EventID, res.Err.Error()))
		default:
			tot := r.usage[res.Event.Workflow]
			if tot == nil {
				tot = &Totals{}
				r.usage[res.Event.Workflow] = tot
			}
			tot.Add(&res.Event)
		}
	})
	r.rejected += rejected
	resp := ptraceotlp.NewExportResponse()
	if rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(rejected))
		resp.PartialSuccess().SetErrorMessage(fmt.Sprintf("%d span(s) rejected: %s", rejected, strings.Join(details, "; ")))
	}
	return resp
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		r.t.Errorf("OTLP/HTTP request %s with Content-Type %q", req.URL.Path, req.Header.Get("Content-Type"))
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			r.t.Errorf("gzip: %v", err)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		r.t.Errorf("read: %v", err)
		return
	}
	er := ptraceotlp.NewExportRequest()
	if err := er.UnmarshalProto(b); err != nil {
		r.t.Errorf("OTLP protobuf: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, err := r.export(er.Traces(), req.Header.Get("Authorization")).MarshalProto()
	if err != nil {
		r.t.Errorf("marshal: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

type grpcTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	r *otlpReceiver
}

func (g *grpcTraces) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	return g.r.export(req.Traces(), strings.Join(md.Get("authorization"), ",")), nil
}

func startOTLPReceivers(t *testing.T) (httpAddr, grpcAddr string, h, g *otlpReceiver) {
	h, g = newOTLPReceiver(t), newOTLPReceiver(t)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(gs, &grpcTraces{r: g})
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return strings.TrimPrefix(srv.URL, "http://"), ln.Addr().String(), h, g
}

func TestRunExportsGenAISpansThroughTheOTelSDK(t *testing.T) {
	httpAddr, grpcAddr, h, g := startOTLPReceivers(t)
	fc := newFakeCollector(t, "tok-2")
	srv := httptest.NewServer(fc)
	defer srv.Close()

	sum, err := Run(context.Background(), Config{
		Target: srv.URL, OTLPHTTP: httpAddr, OTLPGRPC: grpcAddr, Token: "tok-2", Tenant: "acme",
		Rate: 2000, Duration: time.Second, Seed: 11, RunID: "otlptest", BatchSize: 50,
		Paths: []Path{PathHTTPJSON, PathOTLPHTTP, PathOTLPGRPC},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	fc.mu.Lock()
	defer fc.mu.Unlock()

	for name, r := range map[string]*otlpReceiver{"otlp-http": h, "otlp-grpc": g} {
		if len(r.auth) != 1 || r.auth["Bearer tok-2"] == 0 {
			t.Errorf("%s: authorization seen %v, want only Bearer tok-2", name, r.auth)
		}
		for s := range r.services {
			switch s {
			case "support-copilot", "legal-research", "marketing-studio", "procurement-agent":
			default:
				t.Errorf("%s: unexpected service.name %q", name, s)
			}
		}
		if len(r.services) == 0 {
			t.Errorf("%s: no resource service.name", name)
		}
	}
	// One app speaks the current GenAI names, the other the older ones.
	for _, k := range []string{"gen_ai.provider.name", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
		"gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.reasoning.output_tokens",
		"gen_ai.response.model", "gen_ai.workflow.name", "gen_ai.conversation.id", "user.id"} {
		if !h.spanKeys[k] {
			t.Errorf("otlp-http spans lack %s", k)
		}
		if g.spanKeys[k] && k != "gen_ai.conversation.id" {
			t.Errorf("otlp-grpc (older names) spans carry %s", k)
		}
	}
	for _, k := range []string{"gen_ai.system", "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens",
		"gen_ai.usage.cache_read_input_tokens", "gen_ai.usage.reasoning_tokens", "enduser.id"} {
		if !g.spanKeys[k] {
			t.Errorf("otlp-grpc spans lack %s", k)
		}
		if h.spanKeys[k] {
			t.Errorf("otlp-http (current names) spans carry %s", k)
		}
	}
	if !h.resKeys["deployment.environment.name"] || !g.resKeys["deployment.environment"] {
		t.Errorf("resource keys: http %v grpc %v", h.resKeys, g.resKeys)
	}
	// Agentic fan-out: many usage spans under one root span in one trace.
	fanouts := 0
	for tid, spans := range h.usageByTr {
		root, ok := h.rootOfTr[tid]
		if len(spans) < 5 || !ok {
			continue
		}
		fanouts++
		for _, sp := range spans {
			if sp.ParentSpanID() != root.SpanID() {
				t.Fatalf("trace %s: span %s has parent %s, want root %s", tid, sp.SpanID(), sp.ParentSpanID(), root.SpanID())
			}
		}
	}
	if fanouts == 0 {
		t.Error("no agentic trace with several usage spans under one root arrived over otlp-http")
	}
	// Everything the three receivers accepted adds up to the summary's expectation.
	for _, wf := range Workflows {
		var got Totals
		for _, m := range []map[string]*Totals{h.usage, g.usage, fc.usage} {
			if t := m[wf]; t != nil {
				got.Calls += t.Calls
				got.InputTokens += t.InputTokens
				got.CacheReadInputTokens += t.CacheReadInputTokens
				got.CacheWriteInputTokens += t.CacheWriteInputTokens
				got.OutputTokens += t.OutputTokens
				got.ReasoningTokens += t.ReasoningTokens
			}
		}
		if wf == WorkflowMarketing {
			n := sum.Bad[BadUnknownModel].AcceptedAtIngest // 800 in, 300 out each
			got.Calls, got.InputTokens, got.OutputTokens = got.Calls-n, got.InputTokens-800*n, got.OutputTokens-300*n
		}
		if got != *sum.Expected[wf] || got.Calls == 0 {
			t.Errorf("workflow %s: receivers decoded %+v, summary expects %+v", wf, got, *sum.Expected[wf])
		}
	}
	for _, p := range []Path{PathOTLPHTTP, PathOTLPGRPC} {
		ps := sum.Paths[p]
		if ps.Sent == 0 || ps.Accepted+ps.Rejected != ps.Sent || ps.Failed != 0 {
			t.Errorf("%s: %+v", p, *ps)
		}
	}
	if got := int64(h.rejected + g.rejected); got != sum.Paths[PathOTLPHTTP].Rejected+sum.Paths[PathOTLPGRPC].Rejected {
		t.Errorf("receivers rejected %d spans, summary says %d", got, sum.Paths[PathOTLPHTTP].Rejected+sum.Paths[PathOTLPGRPC].Rejected)
	}
}

func TestOTLPPartialSuccessIsChargedToTheBadSpan(t *testing.T) {
	httpAddr, _, h, _ := startOTLPReceivers(t)
	cfg := Config{Target: "http://unused", OTLPHTTP: httpAddr, Token: "tok", Paths: []Path{PathOTLPHTTP}}
	cfg.ApplyDefaults()
	sum := newSummary(&cfg)
	app, err := newOTLPApp(context.Background(), &cfg, PathOTLPHTTP, sum)
	if err != nil {
		t.Fatal(err)
	}
	defer app.shutdown(context.Background())
	at := time.Now().UTC().Truncate(time.Millisecond)
	mk := func(span string, in, cr int64, bad string) Call {
		return Call{Path: PathOTLPHTTP, Bad: bad, Start: at.Add(-time.Second), Event: event.UsageEvent{
			EventTime: at, Tenant: "acme", Provider: "openai", Model: "gpt-4o-mini", Operation: "chat",
			Workflow: WorkflowSupport, TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: span,
			InputTokens: in, CacheReadInputTokens: cr, OutputTokens: 10}}
	}
	req := &Request{Workflow: WorkflowSupport, App: "support-copilot", At: at, Calls: []Call{
		mk("b7ad6b7169203331", 1000, 1500, BadCacheExceedsInput), // 1500 cached of 1000 input: rejected
		mk("b7ad6b7169203332", 1000, 500, ""),
	}}
	app.flush(context.Background(), []*Request{req})
	if h.rejected != 1 {
		t.Fatalf("receiver rejected %d spans, want 1", h.rejected)
	}
	ps := sum.Paths[PathOTLPHTTP]
	if ps.Sent != 2 || ps.Accepted != 1 || ps.Rejected != 1 || ps.Reasons["invalid_usage (cache_read_input_tokens)"] != 1 {
		t.Fatalf("path stats %+v", *ps)
	}
	if b := sum.Bad[BadCacheExceedsInput]; b == nil || b.RejectedAtIngest != 1 {
		t.Fatalf("bad stats %+v", b)
	}
	if e := sum.Expected[WorkflowSupport]; e.Calls != 1 || e.InputTokens != 1000 || e.CacheReadInputTokens != 500 {
		t.Fatalf("expected totals %+v, want the good span only (1000 in, 500 cached)", *e)
	}
}
