package app

import (
	"context"
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/httpx"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/budget"
	"github.com/tokenmeter/tokenmeter/internal/collector"
	"github.com/tokenmeter/tokenmeter/internal/gateway"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/processor"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/sink"
	"github.com/tokenmeter/tokenmeter/internal/telemetry"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// Resolve turns a path from the config into one relative to the config file's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

// Run runs the configured roles until ctx is cancelled, then shuts them down
// in reverse order, each within shutdownTimeout. It returns the first fatal
// error.
func Run(ctx context.Context, cfg *Config, tel *telemetry.Telemetry, shutdownTimeout time.Duration) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := tel.Logger
	if lim := applyMemoryLimit(cfg.Limits.MemoryLimit); lim != math.MaxInt64 {
		log.Info("memory limit", "bytes", lim)
	}
	tenants, err := tenant.NewRegistry(cfg.Tenants)
	if err != nil {
		return fmt.Errorf("tenants: %w", err)
	}

	kcfg := cfg.Kafka
	var embedded *kafkax.Embedded
	if kcfg.UsesEmbedded() {
		ecfg := kcfg.Embedded
		ecfg.DataDir = cfg.Resolve(ecfg.DataDir)
		embedded, err = kafkax.StartEmbedded(ecfg, kcfg.Topics.Partitions)
		if err != nil {
			return err
		}
		// Closed last, after every role has drained into it.
		defer embedded.Close()
		kcfg.Brokers = embedded.Addrs()
		if u := ecfg.SASL; u.Username != "" {
			kcfg.SASL = kafkax.SASLConfig{Mechanism: "SCRAM-SHA-256", Username: u.Username, Password: u.Password}
		}
		log.Info("embedded kafka broker started", "addrs", kcfg.Brokers, "data_dir", ecfg.DataDir,
			"fsync", ecfg.FsyncOn() && ecfg.DataDir != "", "sasl", ecfg.SASL.Username != "")
	}

	admin, err := kgo.NewClient(kcfg.ClientOpts()...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer admin.Close()
	if err := kafkax.Ping(ctx, admin); err != nil {
		return fmt.Errorf("kafka: brokers %v do not answer: %w", kcfg.Brokers, err)
	}
	if err := kafkax.EnsureTopics(ctx, admin, kcfg.Topics, log, kcfg.Topics.All()...); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}

	mux := http.NewServeMux()
	deps := role.Deps{
		Logger:        log,
		Meter:         tel.Meter,
		MeterProvider: tel.MeterProvider,
		Tracer:        tel.Tracer,
		Kafka:         kcfg,
		Tenants:       tenants,
		Mux:           mux,
		Limits:        cfg.Limits,
	}
	prices, err := pricing.Load(cfg.Pricing, cfg.Resolve)
	if err != nil {
		return fmt.Errorf("pricing: %w", err)
	}
	roles, err := buildRoles(cfg, deps, prices)
	if err != nil {
		return err
	}

	metricsToken, err := cfg.HTTP.metricsToken()
	if err != nil {
		return err
	}
	if cfg.HTTP.MetricsListen == "" {
		mux.Handle("GET /metrics", guardMetrics(tel.MetricsHandler(), metricsToken))
	} else {
		mln, err := net.Listen("tcp", cfg.HTTP.MetricsListen)
		if err != nil {
			return fmt.Errorf("http.metrics_listen: cannot listen on %s: %w", cfg.HTTP.MetricsListen, err)
		}
		mmux := http.NewServeMux()
		mmux.Handle("GET /metrics", tel.MetricsHandler())
		msrv := &http.Server{Handler: mmux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: cfg.HTTP.ReadTimeout}
		go func() { _ = msrv.Serve(mln) }()
		defer msrv.Close()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		checks := map[string]string{}
		ready := true
		if err := kafkax.Ping(r.Context(), admin); err != nil {
			checks["kafka"], ready = err.Error(), false
		} else {
			checks["kafka"] = "ok"
		}
		for _, ro := range roles {
			if c, ok := ro.(role.Checker); ok {
				if err := c.Ready(r.Context()); err != nil {
					checks[ro.Name()], ready = err.Error(), false
				} else {
					checks[ro.Name()] = "ok"
				}
			}
		}
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		httpx.WriteJSON(w, code, map[string]any{"ready": ready, "checks": checks})
	})

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: cannot listen on %s (port in use?): %w", cfg.HTTP.Listen, err)
	}
	srv, err := newAPIServer(cfg.HTTP, mux)
	if err != nil {
		_ = ln.Close()
		return err
	}

	fatal := make(chan error, len(roles)+1)
	var started []role.Role
	defer func() {
		// Stop in reverse start order: intake first, then each role drains
		// into the next (collector: in-flight requests answered; processor:
		// the usage it was given priced and committed; sink: what was priced
		// stored), each within its own shutdownTimeout, so a slow role does
		// not eat the next one's time. See docs/clickhouse.md "Stopping".
		for _, r := range started {
			if s, ok := r.(role.IntakeStopper); ok {
				s.StopIntake()
			}
		}
		// Waits for in-flight requests, whose records are acknowledged before they answer.
		hctx, hcancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if e := srv.Shutdown(hctx); e != nil && err == nil {
			err = fmt.Errorf("http shutdown: %w", e)
		}
		hcancel()
		for i := len(started) - 1; i >= 0; i-- {
			r := started[i]
			log.Info("stopping role", "role", r.Name())
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			e := r.Shutdown(sctx)
			cancel()
			if e != nil {
				log.Error("role shutdown", "role", r.Name(), "err", e)
				if err == nil {
					err = fmt.Errorf("%s shutdown: %w", r.Name(), e)
				}
			}
		}
	}()
	for _, r := range roles {
		log.Info("starting role", "role", r.Name())
		if err := r.Start(ctx, fatal); err != nil {
			return fmt.Errorf("%s: %w", r.Name(), err)
		}
		started = append(started, r)
	}
	go func() {
		if e := serve(srv, limitListener(ln, cfg.HTTP.MaxConnections)); e != nil && !errors.Is(e, http.ErrServerClosed) {
			fatal <- fmt.Errorf("http: %w", e)
		}
	}()
	log.Info("tokenmeter running", "roles", cfg.Roles, "http", ln.Addr().String(), "brokers", kcfg.Brokers, "pid", os.Getpid())

	select {
	case <-ctx.Done():
		log.Info("shutting down: draining accepted events")
		return nil
	case e := <-fatal:
		return e
	}
}

func buildRoles(cfg *Config, deps role.Deps, prices *pricing.Engine) ([]role.Role, error) {
	var out []role.Role
	var ledger *budget.Budget
	for _, name := range startOrder {
		if !cfg.Has(name) {
			continue
		}
		d := deps
		d.Logger = deps.Logger.With("role", name)
		var (
			r   role.Role
			err error
		)
		switch name {
		case RoleSink:
			r, err = sink.New(cfg.Sink, cfg.ClickHouse, d)
		case RoleBudget:
			if ledger, err = budget.New(cfg.Budget, prices, d); err == nil {
				err = attachCommitments(ledger, cfg, d.Logger)
				r = ledger
			}
		case RoleProcessor:
			r, err = processor.New(cfg.Processor.Resolved(cfg.Resolve), prices, d)
		case RoleCollector:
			r, err = collector.New(cfg.Collector, d)
		case RoleGateway:
			if ledger == nil {
				return nil, errors.New("gateway: needs the budget role in the same process")
			}
			r, err = gateway.New(cfg.Gateway, ledger, prices, d)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, r)
	}
	return out, nil
}
