// Package role defines what every pipeline role (collector, processor, sink,
// budget) is given and how it is started and stopped, so cmd/tokenmeter can
// run any set of them in one process.
package role

import (
	"context"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// Deps is what a role receives from the process. Telemetry is passed in, never global.
type Deps struct {
	Logger        *slog.Logger
	Meter         metric.Meter
	MeterProvider metric.MeterProvider // for library instrumentation (kotel)
	Tracer        trace.Tracer
	// Kafka has Brokers resolved (the embedded broker's address when embedded).
	Kafka   kafkax.Config
	Tenants *tenant.Registry
	// Mux is the process's HTTP API server (http.listen); roles register their routes on it.
	Mux *http.ServeMux
	// Limits are the pipeline's input bounds (the `limits:` section), the
	// same for every role; zero fields mean the defaults.
	Limits limits.Limits
}

// Role is a long-running stage.
//
// Start begins work and returns once the role is serving (or failed to);
// background goroutines report fatal errors through the process's error
// channel given to Start. Shutdown stops intake, drains what was accepted
// downstream, respects ctx's deadline and is safe to call twice.
type Role interface {
	Name() string
	Start(ctx context.Context, fatal chan<- error) error
	Shutdown(ctx context.Context) error
}

// Checker is implemented by roles whose readiness depends on something
// outside the process (broker, ClickHouse, rebuilt state).
type Checker interface {
	Ready(ctx context.Context) error
}

// IntakeStopper is implemented by roles that take input from outside the
// pipeline (the collector). StopIntake makes them refuse new input (HTTP 503)
// at once; the process calls it first on shutdown, before it closes its
// servers and drains the other roles, so nothing new is accepted while the
// rest of the pipeline drains.
type IntakeStopper interface {
	StopIntake()
}
