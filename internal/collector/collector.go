// Package collector is the collector role: it receives usage and outcome
// events over HTTP (POST /v1/usage, POST /v1/outcomes on the shared API
// server) and GenAI spans over OTLP (gRPC :4317, HTTP :4318), turns them into
// canonical events with internal/ingest, and produces them to
// tokenmeter.usage.v1 / tokenmeter.outcomes.v1 keyed tenant/workflow.
//
// The rule it exists to keep (DESIGN.md invariant 3): a 2xx answer means
// the broker acknowledged every accepted record (acks=all, idempotent
// producer). Anything else is a 4xx (the client's fault, not retryable) or a
// 503 with Retry-After (retry the same request; event ids make it idempotent).
//
// File map:
//
//	config.go   Config, defaults, Validate
//	collector.go  the role: producer, lifecycle, auth, metrics
//	http.go     POST /v1/usage and /v1/outcomes
//	otlp.go     OTLP/gRPC and OTLP/HTTP trace receivers
package collector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/ingest"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// Collector is the collector role.
type Collector struct {
	cfg     Config
	deps    role.Deps
	mapper  *ingest.SpanMapper
	metrics *metrics
	// now is the clock; tests replace it.
	now func() time.Time

	client       *kgo.Client
	shuttingDown atomic.Bool
	// dlqEnabled: rejected OTLP spans are written to the DLQ topic (on when
	// the topic exists at start; the app creates it).
	dlqEnabled bool
	grpcSrv    *grpc.Server
	httpSrv    *http.Server
	stopOnce   sync.Once
	stopErr    error
	// OTLPGRPCAddr and OTLPHTTPAddr are the bound listener addresses once
	// started (useful with port 0).
	OTLPGRPCAddr string
	OTLPHTTPAddr string
}

// New builds the role; it validates cfg first. It connects nothing: Start does.
func New(cfg Config, deps role.Deps) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Tenants == nil {
		return nil, errors.New("collector: no tenant registry (tenants: section)")
	}
	m, err := newMetrics(deps.Meter)
	if err != nil {
		return nil, fmt.Errorf("collector metrics: %w", err)
	}
	return &Collector{cfg: cfg, deps: deps, mapper: ingest.NewSpanMapper(cfg.Attributes.Sources()).WithCallMemory(ingest.NewCallMemory(cfg.OTLP.CallMemoryWindow, cfg.OTLP.CallMemoryMax)), metrics: m, now: time.Now}, nil
}

// Name implements role.Role.
func (c *Collector) Name() string { return "collector" }

// Start creates the producer, registers the HTTP routes on deps.Mux and
// starts the OTLP listeners. A listener that cannot bind fails Start.
func (c *Collector) Start(ctx context.Context, fatal chan<- error) error {
	opts := append(c.deps.Kafka.ClientOpts(),
		// acks=all and idempotence are franz-go's defaults; stated here because
		// the 2xx-after-ack rule depends on them.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(int(c.cfg.Producer.MaxBufferedRecords)),
		kgo.MaxBufferedBytes(int(c.cfg.Producer.MaxBufferedBytes)),
		kgo.ProducerLinger(c.cfg.Producer.Linger),
	)
	if c.cfg.Producer.DeliveryTimeout > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(c.cfg.Producer.DeliveryTimeout))
	}
	if c.deps.MeterProvider != nil {
		k := kotel.NewKotel(kotel.WithMeter(kotel.NewMeter(kotel.MeterProvider(c.deps.MeterProvider))))
		opts = append(opts, kgo.WithHooks(k.Hooks()...))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka producer: %w", err)
	}
	c.client = cl
	c.dlqEnabled = c.dlqTopicExists(ctx)
	if c.deps.Mux != nil {
		c.deps.Mux.Handle("POST /v1/usage", c.UsageHandler())
		c.deps.Mux.Handle("POST /v1/outcomes", c.OutcomesHandler())
	}
	if err := c.startOTLP(fatal); err != nil {
		c.stopOTLP(context.Background())
		cl.Close()
		return err
	}
	return nil
}

// dlqTopicExists reports whether the DLQ topic is there. A missing topic
// (a hand-built setup; `tokenmeter run` creates every topic) switches the
// OTLP rejection copies off rather than stalling exports on it.
func (c *Collector) dlqTopicExists(ctx context.Context) bool {
	topic := c.deps.Kafka.Topics.DLQ
	if topic == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	details, err := kadm.NewClient(c.client).ListTopics(ctx, topic)
	if err != nil {
		c.deps.Logger.Warn("cannot check the DLQ topic; rejected OTLP spans will be written to it", "topic", topic, "err", err)
		return true
	}
	if d, ok := details[topic]; !ok || d.Err != nil {
		c.deps.Logger.Warn("DLQ topic missing: rejected OTLP spans are only counted and reported to the exporter", "topic", topic)
		return false
	}
	return true
}

// Ready implements role.Checker: ready when the broker answers.
func (c *Collector) Ready(ctx context.Context) error {
	if c.client == nil {
		return errors.New("not started")
	}
	if c.shuttingDown.Load() {
		return errors.New("shutting down")
	}
	return kafkax.Ping(ctx, c.client)
}

// StopIntake implements role.IntakeStopper: from now on every ingest request
// is answered 503; requests already producing finish and are acknowledged.
func (c *Collector) StopIntake() { c.shuttingDown.Store(true) }

// Shutdown stops intake (HTTP handlers answer 503 from now on; the app closes
// the API server), stops the OTLP listeners letting in-flight exports finish,
// flushes the producer so every answered request's records are on the broker,
// and closes the client. It respects ctx and is safe to call twice.
func (c *Collector) Shutdown(ctx context.Context) error {
	c.shuttingDown.Store(true)
	c.stopOnce.Do(func() {
		c.stopOTLP(ctx)
		if c.client == nil {
			return
		}
		// Handlers wait for their own acknowledgements; Flush covers any
		// record still buffered so Close does not abort it.
		if err := c.client.Flush(ctx); err != nil {
			c.stopErr = fmt.Errorf("flush producer: %w", err)
		}
		c.client.Close()
	})
	return c.stopErr
}

// Produce errors, mapped to 503 (retryable) by the receivers.
var (
	errShuttingDown = errors.New("collector is shutting down")
	errBufferFull   = errors.New("producer buffer is full")
	// errNeverFits: the request alone exceeds the producer buffer bounds, so
	// retrying it can never succeed (a 413, not a 503).
	errNeverFits = errors.New("request is larger than the producer buffer (collector.producer.max_buffered_records / max_buffered_bytes)")
)

// produceBatch is one request's records waiting for acknowledgement.
type produceBatch struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
	done func(*kgo.Record, error)
}

// produce sends recs and returns once the broker acknowledged every one of
// them, or with the first error. It never blocks on a full buffer: a request
// that does not fit fails fast with errBufferFull so the client backs off.
func (c *Collector) produce(ctx context.Context, recs []*kgo.Record, valueBytes int64) error {
	if c.shuttingDown.Load() || c.client == nil {
		return errShuttingDown
	}
	if len(recs) == 0 {
		return nil
	}
	n := int64(len(recs))
	if n > c.cfg.Producer.MaxBufferedRecords || valueBytes > c.cfg.Producer.MaxBufferedBytes {
		return errNeverFits
	}
	if c.client.BufferedProduceRecords()+n > c.cfg.Producer.MaxBufferedRecords ||
		c.client.BufferedProduceBytes()+valueBytes > c.cfg.Producer.MaxBufferedBytes {
		return errBufferFull
	}
	b := &produceBatch{}
	b.done = func(_ *kgo.Record, err error) {
		if err != nil {
			b.mu.Lock()
			if b.err == nil {
				b.err = err
			}
			b.mu.Unlock()
		}
		b.wg.Done()
	}
	b.wg.Add(len(recs))
	for _, r := range recs {
		// TryProduce fails with ErrMaxBuffered instead of blocking when
		// concurrent requests filled the buffer after the check above.
		c.client.TryProduce(ctx, r, b.done)
	}
	b.wg.Wait()
	switch {
	case b.err == nil:
		return nil
	case errors.Is(b.err, kgo.ErrMaxBuffered):
		return errBufferFull
	case errors.Is(b.err, kgo.ErrClientClosed):
		return errShuttingDown
	}
	return fmt.Errorf("broker did not acknowledge: %w", b.err)
}

// authenticate resolves an Authorization header ("Bearer TOKEN") to its tenant.
func (c *Collector) authenticate(header string) (*tenant.Tenant, bool) {
	return c.deps.Tenants.AuthenticateHeader(header)
}

func (c *Collector) retryAfterSeconds() string {
	return fmt.Sprintf("%d", int(c.cfg.RetryAfter.Round(time.Second)/time.Second))
}

// serverTLS builds the OTLP listeners' TLS config, or nil when TLS is off.
func (c *Collector) serverTLS() (*tls.Config, error) {
	tc, err := c.cfg.OTLP.TLS.Server()
	if err != nil {
		return nil, fmt.Errorf("otlp.%w", err)
	}
	return tc, nil
}

// Server builds the server side of t (nil when cert_file is empty); the
// OTLP listeners and the main API server (http.tls) share it. Errors name
// the tls.* field.
func (t TLSConfig) Server() (*tls.Config, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.client_ca_file: %s holds no PEM certificate", t.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Paths label metrics.
const (
	pathHTTP     = "http"
	pathOTLPGRPC = "otlp_grpc"
	pathOTLPHTTP = "otlp_http"
)

// Request-level rejection reasons (the whole request is refused).
const (
	reqUnauthenticated = "unauthenticated"
	reqForbidden       = "tenant_mismatch"
	reqTooLarge        = "body_too_large"
	reqTooManyItems    = "too_many_items"
	reqMediaType       = "unsupported_media_type"
	reqUnreadable      = "unreadable_body"
	reqNoValidItems    = "no_valid_items"
	reqBufferFull      = "buffer_full"
	reqBrokerError     = "broker_error"
	reqShuttingDown    = "shutting_down"
	reqLimit           = "limit_exceeded"
)

type metrics struct {
	accepted     metric.Int64Counter
	rejected     metric.Int64Counter
	reqRejected  metric.Int64Counter
	spansSkipped metric.Int64Counter
	spansDup     metric.Int64Counter
	unmetered    metric.Int64Counter
	limitBreach  metric.Int64Counter

	mu   sync.Mutex
	sets map[[3]string]metric.MeasurementOption
}

func newMetrics(m metric.Meter) (*metrics, error) {
	if m == nil {
		return nil, errors.New("no meter")
	}
	var errs []error
	ctr := func(name, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	out := &metrics{
		accepted:     ctr("tokenmeter_collector_events_accepted", "Events acknowledged by the broker, by path and kind."),
		rejected:     ctr("tokenmeter_collector_events_rejected", "Events (items, spans) rejected, by path, kind and reason."),
		reqRejected:  ctr("tokenmeter_collector_requests_rejected", "Whole requests refused, by path and reason."),
		spansSkipped: ctr("tokenmeter_collector_spans_skipped", "OTLP spans without GenAI usage attributes, by path."),
		spansDup:     ctr("tokenmeter_collector_spans_duplicate", "OTLP spans reporting a model call another span already reported (same gen_ai.response.id in the trace, or a parent/child pair), by path; not produced."),
		unmetered:    ctr("tokenmeter_collector_calls_unmetered", "Model calls accepted without usage (usage_completeness=usage_missing), by path: their cost is unknown, not zero."),
		limitBreach:  ctr("tokenmeter_collector_limit_breaches", "Input limits breached (limits: section), by path and limit (a closed set: max_depth, max_string_bytes, ...)."),
		sets:         map[[3]string]metric.MeasurementOption{},
	}
	return out, errors.Join(errs...)
}

// attrs caches attribute sets: the hot path adds with no allocation.
func (m *metrics) attrs(path, kind, reason string) metric.MeasurementOption {
	k := [3]string{path, kind, reason}
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.sets[k]; ok {
		return o
	}
	kv := []attribute.KeyValue{attribute.String("path", path)}
	if kind != "" {
		kv = append(kv, attribute.String("kind", kind))
	}
	if reason != "" {
		kv = append(kv, attribute.String("reason", reason))
	}
	o := metric.WithAttributeSet(attribute.NewSet(kv...))
	m.sets[k] = o
	return o
}

func (m *metrics) accept(path, kind string, n int) {
	if n > 0 {
		m.accepted.Add(context.Background(), int64(n), m.attrs(path, kind, ""))
	}
}

func (m *metrics) reject(path, kind, reason string, n int) {
	if n > 0 {
		m.rejected.Add(context.Background(), int64(n), m.attrs(path, kind, reason))
	}
}

func (m *metrics) refuse(path, reason string) {
	m.reqRejected.Add(context.Background(), 1, m.attrs(path, "", reason))
}

func (m *metrics) duplicate(path string, n int) {
	if n > 0 {
		m.spansDup.Add(context.Background(), int64(n), m.attrs(path, "", ""))
	}
}

func (m *metrics) unmeteredCalls(path string, n int) {
	if n > 0 {
		m.unmetered.Add(context.Background(), int64(n), m.attrs(path, "", ""))
	}
}

// breach counts one breached limit; breach is a limits.Breach* constant.
func (m *metrics) breach(path, breach string) {
	k := [3]string{"\x00limit", path, breach}
	m.mu.Lock()
	o, ok := m.sets[k]
	if !ok {
		o = metric.WithAttributeSet(attribute.NewSet(attribute.String("path", path), attribute.String("limit", breach)))
		m.sets[k] = o
	}
	m.mu.Unlock()
	m.limitBreach.Add(context.Background(), 1, o)
}

// breaches counts the limits named in an item's problems.
func (m *metrics) breaches(path string, problems []event.FieldError) {
	for _, p := range problems {
		if p.Limit != "" {
			m.breach(path, p.Limit)
		}
	}
}

func (m *metrics) skip(path string, n int) {
	if n > 0 {
		m.spansSkipped.Add(context.Background(), int64(n), m.attrs(path, "", ""))
	}
}
