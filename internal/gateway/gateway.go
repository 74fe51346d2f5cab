// Package gateway is the gateway role: a metering reverse proxy in front of
// OpenAI-compatible (/v1/chat/completions, /v1/responses, /v1/embeddings)
// and Anthropic (/v1/messages) APIs that puts the budget decision in the
// path of every call, and the ext_authz / auth_request endpoints that let
// Envoy and nginx ask the same ledger.
//
// # Design
//
// One call: authenticate the client's key (its tenant and attribution),
// estimate the worst case (input bound by the body size, output by the
// request's cap, priced by the processor's engine: long-context tier,
// reasoning and cache-write rates included when they can apply), check and
// reserve it on every applicable budget in one atomic step of the budget
// ledger, and only then forward. A denial answers in the provider's error
// shape. When the answer is complete — a JSON body, or the end of a stream
// (the final usage chunk, response.completed, message_start +
// message_delta) — the reservation is settled with the exact cost (priced
// by the same engine) and the usage event is produced to the usage topic
// with event_id = the provider's response id and attribute
// budget.request_id = the reservation, so the processor prices it once
// (a second report of the same response id is a duplicate) and the budget
// role turns the reservation into spend. Upstream errors and failed
// connections release the reservation (providers do not bill them); a
// client that goes away mid-stream, or a stream cut by a timeout, is
// charged the input bound plus the deltas already streamed, flagged
// tokenmeter.usage_estimated.
//
// Overshoot bound: reservations never exceed an enforce budget's amount and
// each call is settled to its exact cost when it completes, so admitted
// spend ≤ amount + Σ (actual − estimate)⁺ over the calls in flight when the
// last call was admitted ≤ amount + concurrency × the largest single error.
// With the defaults the input estimate is an upper bound and a request's
// max tokens caps its output, so the error is zero for calls that set a
// cap; a call without a cap may exceed default_max_output_tokens by what it
// produced beyond it (docs/gateway.md).
//
// File map:
//
//	config.go   Config, defaults, Validate
//	gateway.go  the role: lifecycle, keys, producing usage events
//	proxy.go    the reverse proxy for the four APIs
//	request.go  reading a request and its worst-case estimate
//	usage.go    reading usage from answers and streams
//	authz.go    Envoy ext_authz (HTTP) and nginx auth_request endpoints
//	errors.go   provider-shaped error answers
package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"

	"github.com/tokenmeter/tokenmeter/internal/budget"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// Ledger is what the gateway needs of the budget role; *budget.Budget
// implements it.
type Ledger interface {
	Check(t *tenant.Tenant, cr *budget.CheckRequest) (budget.CheckResponse, int, error)
	Settle(tenantID, requestID string, cost decimal.Decimal, tokens int64) bool
	Release(tenantID, requestID string) bool
}

// Gateway is the gateway role.
type Gateway struct {
	cfg    Config
	deps   role.Deps
	ledger Ledger
	prices *pricing.Engine
	est    *estimator
	keys   []key
	// now is the clock; tests replace it.
	now func() time.Time

	client   *kgo.Client
	upstream *http.Client
	srv      *http.Server
	ln       net.Listener
	inflight sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
	closing  atomic.Bool

	// Addr is the proxy's bound address once started; AuthzGRPCAddr the
	// ext_authz gRPC server's (when configured).
	Addr, AuthzGRPCAddr string
	grpcSrv             *grpc.Server

	stats   Stats
	metrics *metrics
}

// Stats counts what the gateway did, for the demo summary and tests.
type Stats struct {
	Allowed, Denied, Released, Settled, Estimated, ProduceErrors atomic.Int64
}

type key struct {
	cfg    KeyConfig
	secret []byte
	tenant *tenant.Tenant
}

// New builds the role; it validates cfg and every key's tenant.
func New(cfg Config, ledger Ledger, prices *pricing.Engine, deps role.Deps) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Tenants == nil {
		return nil, errors.New("gateway: no tenant registry")
	}
	if ledger == nil {
		return nil, errors.New("gateway: needs the budget role in the same process (roles: [budget, gateway, ...])")
	}
	if prices == nil {
		return nil, errors.New("gateway: needs a price catalogue (pricing.catalogues)")
	}
	if err := cfg.CheckTenants(func(id string) bool { _, ok := deps.Tenants.Lookup(id); return ok }); err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, deps: deps, ledger: ledger, prices: prices, now: time.Now}
	g.est = &estimator{prices: prices, bytesPerToken: cfg.BytesPerToken, defaultOut: cfg.DefaultMaxOutputTokens, now: func() time.Time { return g.now() }}
	for _, k := range cfg.Keys {
		t, _ := deps.Tenants.Lookup(k.Tenant)
		g.keys = append(g.keys, key{cfg: k, secret: []byte(k.Key), tenant: t})
	}
	g.metrics = newMetrics(deps.Meter)
	return g, nil
}

// Name implements role.Role.
func (g *Gateway) Name() string { return "gateway" }

// Stats returns the role's counters.
func (g *Gateway) Stats() *Stats { return &g.stats }

// Start creates the usage producer, registers the authz endpoints on the
// API server and starts the proxy listener.
func (g *Gateway) Start(ctx context.Context, fatal chan<- error) error {
	cl, err := kgo.NewClient(append(g.deps.Kafka.ClientOpts(), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		return fmt.Errorf("kafka producer: %w", err)
	}
	g.client = cl
	g.upstream = &http.Client{Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second,
		ForceAttemptHTTP2: true, ResponseHeaderTimeout: g.cfg.UpstreamTimeout,
	}}
	if g.deps.Mux != nil {
		g.routes(g.deps.Mux)
	}
	ln, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		cl.Close()
		return fmt.Errorf("gateway.listen: cannot listen on %s: %w", g.cfg.Listen, err)
	}
	g.ln, g.Addr = ln, ln.Addr().String()
	if g.cfg.AuthzGRPCListen != "" {
		gl, err := net.Listen("tcp", g.cfg.AuthzGRPCListen)
		if err != nil {
			ln.Close()
			cl.Close()
			return fmt.Errorf("gateway.authz_grpc_listen: cannot listen on %s: %w", g.cfg.AuthzGRPCListen, err)
		}
		g.AuthzGRPCAddr = gl.Addr().String()
		g.grpcSrv = grpc.NewServer()
		authv3.RegisterAuthorizationServer(g.grpcSrv, &authzGRPC{g: g})
		go func() {
			if err := g.grpcSrv.Serve(gl); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				fatal <- fmt.Errorf("gateway ext_authz gRPC: %w", err)
			}
		}()
	}
	g.srv = &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := g.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fatal <- fmt.Errorf("gateway: %w", err)
		}
	}()
	g.deps.Logger.Info("gateway listening", "addr", g.Addr, "openai", g.cfg.OpenAI.URL, "anthropic", g.cfg.Anthropic.URL)
	return nil
}

// StopIntake implements role.IntakeStopper: new calls get 503.
func (g *Gateway) StopIntake() { g.closing.Store(true) }

// Shutdown stops taking calls, lets calls in flight finish (their usage
// events are produced) within ctx, flushes the producer and closes it.
// Safe to call twice.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.closing.Store(true)
	g.stopOnce.Do(func() {
		if g.grpcSrv != nil {
			stopped := make(chan struct{})
			go func() { g.grpcSrv.GracefulStop(); close(stopped) }()
			select {
			case <-stopped:
			case <-ctx.Done():
				g.grpcSrv.Stop()
			}
		}
		if g.srv != nil {
			if err := g.srv.Shutdown(ctx); err != nil {
				g.stopErr = fmt.Errorf("gateway server: %w", err)
			}
		}
		done := make(chan struct{})
		go func() { g.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			g.stopErr = errors.Join(g.stopErr, fmt.Errorf("gateway: calls in flight: %w", ctx.Err()))
		}
		if g.client != nil {
			if err := g.client.Flush(ctx); err != nil {
				g.stopErr = errors.Join(g.stopErr, fmt.Errorf("gateway: flush usage events: %w", err))
			}
			g.client.Close()
		}
	})
	return g.stopErr
}

// lookupKey finds the key a client sent, in constant time per key.
func (g *Gateway) lookupKey(secret string) (*key, bool) {
	if secret == "" {
		return nil, false
	}
	var found *key
	for i := range g.keys {
		if subtle.ConstantTimeCompare(g.keys[i].secret, []byte(secret)) == 1 {
			found = &g.keys[i]
		}
	}
	return found, found != nil
}

// clientKey is the key a request carries: x-api-key (Anthropic) or a bearer token (OpenAI).
func clientKey(r *http.Request) string { return clientKeyOf(r.Header) }

func clientKeyOf(h http.Header) string {
	if k := h.Get("X-Api-Key"); k != "" {
		return k
	}
	return tenant.BearerToken(h.Get("Authorization"))
}

// attribution is whom a call is charged to.
type attribution struct {
	tenant                    *tenant.Tenant
	key, workflow, team, user string
	// Descriptive fields (no budget depends on them), from headers.
	promptTemplate, promptVersion, application, traceID, conversationID string
}

func (g *Gateway) attribute(k *key, h http.Header) attribution {
	a := attribution{tenant: k.tenant, key: k.cfg.Name, workflow: k.cfg.Workflow, team: k.cfg.Team, user: k.cfg.User}
	if *g.cfg.HeaderAttribution {
		fill := func(dst *string, name string) {
			if *dst == "" {
				*dst = h.Get(name)
			}
		}
		fill(&a.workflow, "X-Tokenmeter-Workflow")
		fill(&a.team, "X-Tokenmeter-Team")
		fill(&a.user, "X-Tokenmeter-User")
		fill(&a.promptTemplate, "X-Tokenmeter-Prompt-Template")
		fill(&a.promptVersion, "X-Tokenmeter-Prompt-Version")
		fill(&a.application, "X-Tokenmeter-Application")
		fill(&a.traceID, "X-Tokenmeter-Trace-Id")
		fill(&a.conversationID, "X-Tokenmeter-Conversation-Id")
	}
	return a
}

type metrics struct {
	calls    metric.Int64Counter
	overhead metric.Float64Histogram
}

func newMetrics(m metric.Meter) *metrics {
	if m == nil {
		return nil
	}
	out := &metrics{}
	out.calls, _ = m.Int64Counter("tokenmeter_gateway_calls",
		metric.WithDescription("calls through the gateway by API and outcome (allowed, denied, released, settled, estimated, error)"))
	out.overhead, _ = m.Float64Histogram("tokenmeter_gateway_decision_seconds",
		metric.WithDescription("time from receiving a call to forwarding it (read, estimate, check and reserve)"), metric.WithUnit("s"))
	return out
}

func (g *Gateway) count(api API, outcome string) {
	if g.metrics != nil && g.metrics.calls != nil {
		g.metrics.calls.Add(context.Background(), 1, metric.WithAttributes(
			attribute.String("api", api.operation()), attribute.String("outcome", outcome)))
	}
}
