// Package telemetry sets up tokenmeter's self-telemetry: JSON logs through
// log/slog, metrics through the OpenTelemetry SDK exported in Prometheus format
// on /metrics, and a tracer provider. Roles receive the logger, meter and
// tracer explicitly; nothing here installs globals except what the OTel
// Prometheus bridge needs.
package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config is the `telemetry:` section.
type Config struct {
	// LogLevel is debug, info, warn or error. Default info. Env TOKENMETER_LOG_LEVEL overrides.
	LogLevel string `yaml:"log_level"`
	// LogFormat is json (default) or text.
	LogFormat string `yaml:"log_format"`
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	if _, err := parseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("log_level: %w", err)
	}
	switch c.LogFormat {
	case "", "json", "text":
	default:
		return fmt.Errorf("log_format: %q is not json or text", c.LogFormat)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
}

// Telemetry bundles what roles are given.
type Telemetry struct {
	Logger *slog.Logger
	Meter  metric.Meter
	Tracer trace.Tracer
	// MeterProvider lets libraries (kotel) instrument themselves.
	MeterProvider  *sdkmetric.MeterProvider
	TracerProvider *sdktrace.TracerProvider

	registry *prometheus.Registry
}

// New builds logging and metrics. Logs go to w (os.Stderr when nil).
func New(cfg Config, w io.Writer) (*Telemetry, error) {
	if w == nil {
		w = os.Stderr
	}
	lvl, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	var h slog.Handler
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})
	} else {
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	tp := sdktrace.NewTracerProvider()
	return &Telemetry{
		Logger:         slog.New(h),
		Meter:          mp.Meter("github.com/tokenmeter/tokenmeter"),
		Tracer:         tp.Tracer("github.com/tokenmeter/tokenmeter"),
		MeterProvider:  mp,
		TracerProvider: tp,
		registry:       reg,
	}, nil
}

// Discard returns telemetry that logs nowhere; for tests.
func Discard() *Telemetry {
	t, _ := New(Config{}, io.Discard)
	return t
}

// MetricsHandler serves /metrics in Prometheus text format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// Shutdown flushes the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	err := t.MeterProvider.Shutdown(ctx)
	if e := t.TracerProvider.Shutdown(ctx); err == nil {
		err = e
	}
	return err
}
