// Package collector benchmarks the collector role end to end inside one
// process: request body -> decode -> validate -> canonical JSON -> produce
// with acks=all (idempotent) to a kfake broker -> acknowledgement -> 202.
//
//	go test -run '^$' -bench . -cpu 1 -benchtime 2000x ./bench/collector/
//
// With -cpu 1 the collector and the in-process broker share one core, so
// events/s is a per-core figure that includes the broker's work.
package collector

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/tokenmeter/tokenmeter/internal/collector"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/telemetry"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

const (
	token     = "bench-token"
	batchSize = 100
)

func startCollector(b *testing.B) *collector.Collector {
	b.Helper()
	var kcfg kafkax.Config
	kcfg.ApplyDefaults()
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, kcfg.Topics.Usage, kcfg.Topics.Outcomes))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	kcfg.Brokers = cl.ListenAddrs()
	reg, err := tenant.NewRegistry([]tenant.Config{{ID: "acme", TimeZone: "UTC", TokenSHA256: []string{tenant.HashToken(token)}}})
	if err != nil {
		b.Fatal(err)
	}
	var cfg collector.Config
	off := ""
	cfg.OTLP.GRPCListen, cfg.OTLP.HTTPListen = &off, &off
	cfg.ApplyDefaults()
	tel := telemetry.Discard()
	c, err := collector.New(cfg, role.Deps{Logger: tel.Logger, Meter: tel.Meter, MeterProvider: tel.MeterProvider,
		Kafka: kcfg, Tenants: reg, Mux: http.NewServeMux()})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(context.Background(), make(chan error, 4)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Shutdown(context.Background()) })
	return c
}

var workflows = []string{"support-copilot", "legal-research", "marketing-copy", "agentic-research"}

func jsonBatch() []byte {
	var sb strings.Builder
	sb.WriteByte('[')
	t0 := time.Now().UTC().Add(-time.Minute)
	for i := 0; i < batchSize; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"event_id":"evt-%08d","event_time":%q,"provider":"openai","model":"gpt-4o-2024-08-06","operation":"chat",`+
			`"input_tokens":%d,"cache_read_input_tokens":%d,"output_tokens":%d,"reasoning_tokens":%d,"workflow":%q,`+
			`"user_id":"user-%d","application":"support-bot","environment":"prod","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}`,
			i, t0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), 1200+i, 400, 300, 64, workflows[i%len(workflows)], i%50)
	}
	sb.WriteByte(']')
	return []byte(sb.String())
}

func otlpBatch(b *testing.B) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "support-bot")
	rs.Resource().Attributes().PutStr("deployment.environment.name", "prod")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	t0 := time.Now().Add(-time.Minute)
	for i := 0; i < batchSize; i++ {
		sp := spans.AppendEmpty()
		sp.SetName("chat gpt-4o")
		sp.SetTraceID(pcommon.TraceID{1, 2, 3, byte(i)})
		sp.SetSpanID(pcommon.SpanID{4, 5, byte(i)})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * time.Millisecond)))
		a := sp.Attributes()
		a.PutStr("gen_ai.provider.name", "openai")
		a.PutStr("gen_ai.operation.name", "chat")
		a.PutStr("gen_ai.request.model", "gpt-4o")
		a.PutStr("gen_ai.response.model", "gpt-4o-2024-08-06")
		a.PutInt("gen_ai.usage.input_tokens", int64(1200+i))
		a.PutInt("gen_ai.usage.cache_read.input_tokens", 400)
		a.PutInt("gen_ai.usage.output_tokens", 300)
		a.PutInt("gen_ai.usage.reasoning.output_tokens", 64)
		a.PutStr("gen_ai.workflow.name", workflows[i%len(workflows)])
		a.PutStr("user.id", fmt.Sprintf("user-%d", i%50))
		a.PutStr("http.response.status_code", "200")
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// run posts body b.N times from 16 concurrent clients (a request waits for
// its acknowledgement, so concurrency keeps batches flowing) and reports
// events/s and allocations per event.
func run(b *testing.B, h http.Handler, contentType string, body []byte, wantCode int) {
	b.Helper()
	b.SetBytes(int64(len(body)))
	var (
		ms0, ms1 runtime.MemStats
		ru0, ru1 syscall.Rusage
	)
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+token)
			r.Header.Set("Content-Type", contentType)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != wantCode {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	runtime.ReadMemStats(&ms1)
	// CPU time the whole process (collector, in-process broker, GC) used:
	// on a shared, overloaded machine this is the honest per-core figure.
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	events := float64(b.N * batchSize)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(events/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/events, "allocs/event")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/events, "B/event")
}

func BenchmarkHTTPJSON100(b *testing.B) {
	c := startCollector(b)
	run(b, c.UsageHandler(), "application/json", jsonBatch(), http.StatusAccepted)
}

func BenchmarkOTLPProto100(b *testing.B) {
	c := startCollector(b)
	run(b, c.OTLPHTTPHandler(), "application/x-protobuf", otlpBatch(b), http.StatusOK)
}
