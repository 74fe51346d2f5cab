package loadgen

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Config says what the load generator sends, where, how fast and for how
// long. The command fills it from flags (and the pipeline config for the
// tenant); there is no `loadgen:` section in a pipeline config.
type Config struct {
	// Target is the collector's HTTP API base URL (POST /v1/usage,
	// /v1/outcomes). Default http://127.0.0.1:8080. The run fails at once
	// with a one-line error when GET Target/healthz cannot connect.
	Target string
	// OTLPHTTP is host:port of the collector's OTLP/HTTP receiver (the SDK
	// exporter posts protobuf to /v1/traces). Empty disables PathOTLPHTTP:
	// its requests go to http-json instead. (The command's --otlp flag
	// defaults to 127.0.0.1:4318.)
	OTLPHTTP string
	// OTLPGRPC is host:port of the collector's OTLP/gRPC receiver. Empty
	// disables PathOTLPGRPC like OTLPHTTP. (--otlp-grpc defaults to
	// 127.0.0.1:4317.)
	OTLPGRPC string
	// KafkaBrokers, when set, enables PathKafka: canonical events produced
	// to KafkaTopic with acks=all. The command takes them from the pipeline
	// config (kafka.brokers, else the embedded broker's listen address).
	KafkaBrokers []string
	// KafkaTopic is the usage topic. Default tokenmeter.usage.v1.
	KafkaTopic string
	// KafkaOpts are extra franz-go client options (TLS, SASL, client id).
	KafkaOpts []kgo.Opt
	// Token is the bearer token sent on every path (Authorization header,
	// also as OTLP header/metadata). Default "demo-acme-token".
	Token string
	// Tenant is written into canonical events; it must be the token's tenant
	// or the collector rejects the events (tenant_mismatch). Default "acme".
	Tenant string
	// Environment is deployment.environment(.name) and the events'
	// environment. Default "demo".
	Environment string
	// Rate is model calls per second (not requests: an agentic request counts
	// all its calls). Default 200. The run plans Rate×Duration calls.
	Rate float64
	// Duration is how long traffic is played. Default 60s. Sending what is
	// still queued afterwards takes at most DrainTimeout more.
	Duration time.Duration
	// DrainTimeout bounds the flush after Duration, retries included.
	// Default 30s.
	DrainTimeout time.Duration
	// Seed makes the traffic reproducible: same Seed and RunID, same events.
	// Default 1.
	Seed uint64
	// RunID goes into every event id, trace id and span id. Default: derived
	// from the start time, so two runs never collide. Reusing a RunID with
	// the same Seed re-sends the same events, which the pipeline must count once.
	RunID string
	// Paths restricts the usage paths used (http-json, http-native,
	// otlp-http, otlp-grpc, kafka). Default: all whose address is set. Requests planned for a disabled
	// path go through http-json (else the first enabled path), so every
	// workflow still has traffic.
	Paths []Path
	// Gateway, when set, is the base URL of tokenmeter's metering gateway:
	// requests of the workflows in GatewayKeys are made as real provider API
	// calls through it (budgets are checked before each and denied calls are
	// counted), instead of being reported to the collector afterwards.
	Gateway string
	// GatewayKeys maps a workflow to the gateway key its application uses.
	GatewayKeys map[string]string
	// NoBadEvents disables the few deliberately bad calls (an unknown model,
	// cache reads above input) sent by default so the DLQ has something to show.
	NoBadEvents bool
	// BatchSize is the most items per HTTP request and OTLP export.
	// Default 100; 1..10000.
	BatchSize int
	// FlushInterval is the longest an item waits for its batch to fill.
	// Default 200ms.
	FlushInterval time.Duration
	// MaxAttempts is how often one HTTP request or OTLP export is tried on
	// 503/429/connection errors (honouring Retry-After) before its items
	// count as failed. Default 8.
	MaxAttempts int
	// RequestTimeout bounds one HTTP attempt. Default 10s.
	RequestTimeout time.Duration
	// Price, when set, prices each good accepted call as the pipeline will
	// (amount and currency, e.g. the tenant's reporting currency), so the
	// summary shows the spend to expect per workflow. The command uses the
	// pipeline's pricing engine.
	Price func(ev *event.UsageEvent) (decimal.Decimal, string, error)
	// Story plays the demo's history (story.go) instead of live traffic:
	// requests with event times from StoryFrom to StoryTo, sent as fast as
	// the collector takes them (Rate and Duration do not apply). The story
	// goes through http-json unless Paths excludes it.
	Story bool
	// StoryFrom and StoryTo bound the history (UTC days; StoryTo at most a
	// day ahead of now, which the collector would refuse).
	StoryFrom, StoryTo time.Time
	// StoryScale multiplies the story's daily volumes. Default 1.
	StoryScale float64
	// Progress, when set, gets warnings at start and a progress line every
	// ProgressEvery (default 10s) while traffic plays.
	Progress      io.Writer
	ProgressEvery time.Duration
}

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {
	if c.Target == "" {
		c.Target = "http://127.0.0.1:8080"
	}
	if c.Token == "" {
		c.Token = "demo-acme-token"
	}
	if c.Tenant == "" {
		c.Tenant = "acme"
	}
	if c.Environment == "" {
		c.Environment = "demo"
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Duration == 0 {
		c.Duration = 60 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.RunID == "" {
		c.RunID = strings.ToLower(fmt.Sprintf("%x", time.Now().UnixMilli()))
	}
	if len(c.Paths) == 0 {
		c.Paths = []Path{PathHTTPJSON, PathNative}
		if c.OTLPHTTP != "" {
			c.Paths = append(c.Paths, PathOTLPHTTP)
		}
		if c.OTLPGRPC != "" {
			c.Paths = append(c.Paths, PathOTLPGRPC)
		}
		if len(c.KafkaBrokers) > 0 {
			c.Paths = append(c.Paths, PathKafka)
		}
	}
	if c.KafkaTopic == "" {
		c.KafkaTopic = event.TopicUsage
	}
	if c.BatchSize == 0 {
		c.BatchSize = 100
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 200 * time.Millisecond
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 8
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 10 * time.Second
	}
}

// Validate reports every problem at once, each with its field name.
func (c *Config) Validate() error {
	if c.Story {
		var errs []error
		if c.StoryFrom.IsZero() || c.StoryTo.IsZero() || !c.StoryFrom.Before(c.StoryTo) {
			errs = append(errs, fmt.Errorf("story: from %s must be before to %s", c.StoryFrom.Format(time.DateOnly), c.StoryTo.Format(time.DateOnly)))
		}
		if c.StoryTo.After(time.Now().Add(24 * time.Hour)) {
			errs = append(errs, fmt.Errorf("story: to %s is more than a day ahead", c.StoryTo.Format(time.DateOnly)))
		}
		if c.StoryScale < 0 {
			errs = append(errs, fmt.Errorf("story: scale %v must be > 0", c.StoryScale))
		}
		if len(errs) > 0 {
			return errors.Join(append(errs, c.validate())...)
		}
	}
	return c.validate()
}

func (c *Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(c.Target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("target", "%q must be an http(s) URL such as http://127.0.0.1:8080", c.Target)
	}
	if c.Token == "" {
		bad("token", "is required")
	}
	if c.Tenant == "" {
		bad("tenant", "is required")
	}
	if c.Rate <= 0 || c.Rate > 100000 {
		bad("rate", "must be in (0, 100000] calls/s; got %g", c.Rate)
	}
	if c.Duration <= 0 || c.Duration > 24*time.Hour {
		bad("duration", "must be in (0, 24h]; got %s", c.Duration)
	}
	if c.DrainTimeout < 0 {
		bad("drain_timeout", "must not be negative")
	}
	if strings.ContainsAny(c.RunID, "/ \t\n") || len(c.RunID) > 64 {
		bad("run_id", "%q must be at most 64 characters without spaces or slashes", c.RunID)
	}
	seen := map[Path]bool{}
	for i, p := range c.Paths {
		switch p {
		case PathHTTPJSON, PathNative, PathOTLPHTTP, PathOTLPGRPC, PathKafka:
		default:
			bad(fmt.Sprintf("paths[%d]", i), "%q is not one of http-json, http-native, otlp-http, otlp-grpc, kafka", p)
		}
		if p == PathOTLPHTTP && c.OTLPHTTP == "" {
			bad(fmt.Sprintf("paths[%d]", i), "otlp-http needs an OTLP/HTTP address (--otlp)")
		}
		if p == PathKafka && len(c.KafkaBrokers) == 0 {
			bad(fmt.Sprintf("paths[%d]", i), "kafka needs brokers (--kafka)")
		}
		if p == PathOTLPGRPC && c.OTLPGRPC == "" {
			bad(fmt.Sprintf("paths[%d]", i), "otlp-grpc needs an OTLP/gRPC address (--otlp-grpc)")
		}
		if seen[p] {
			bad(fmt.Sprintf("paths[%d]", i), "%q is listed twice", p)
		}
		seen[p] = true
	}
	if c.Gateway != "" {
		if u, err := url.Parse(c.Gateway); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("gateway", "%q must be an http(s) URL such as http://127.0.0.1:8090", c.Gateway)
		}
		if len(c.GatewayKeys) == 0 {
			bad("gateway_keys", "a workflow → key mapping is required with gateway")
		}
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		bad("batch_size", "must be in 1..10000; got %d", c.BatchSize)
	}
	if c.FlushInterval <= 0 {
		bad("flush_interval", "must be > 0")
	}
	if c.MaxAttempts < 1 {
		bad("max_attempts", "must be >= 1")
	}
	if c.RequestTimeout <= 0 {
		bad("request_timeout", "must be > 0")
	}
	return errors.Join(errs...)
}

// ParsePaths splits a comma-separated path list ("http-json,otlp-http").
func ParsePaths(s string) []Path {
	var out []Path
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, Path(p))
		}
	}
	return out
}
