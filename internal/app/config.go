// Package app loads a pipeline config and runs the configured roles as one
// group: start in dependency order, stop in reverse, drain on SIGTERM.
package app

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/budget"
	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/collector"
	"github.com/tokenmeter/tokenmeter/internal/configerr"
	"github.com/tokenmeter/tokenmeter/internal/confload"
	"github.com/tokenmeter/tokenmeter/internal/gateway"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/processor"
	"github.com/tokenmeter/tokenmeter/internal/sink"
	"github.com/tokenmeter/tokenmeter/internal/telemetry"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// Role names accepted in `roles:`.
const (
	RoleCollector = "collector"
	RoleProcessor = "processor"
	RoleSink      = "sink"
	RoleBudget    = "budget"
	// RoleGateway is the metering proxy (internal/gateway). Not in the
	// default set: it needs gateway.keys and runs beside the budget role.
	RoleGateway = "gateway"
)

// AllRoles in start order: downstream first, so nothing is produced before its consumer is ready.
var AllRoles = []string{RoleSink, RoleBudget, RoleProcessor, RoleCollector}

// startOrder is every role in start order; the gateway starts last (after
// the budget role it asks and the collector path it feeds).
var startOrder = append(append([]string{}, AllRoles...), RoleGateway)

// Config is a whole pipeline config file.
type Config struct {
	// Roles to run in this process. Default: all four. Env TOKENMETER_ROLES (comma-separated) overrides.
	Roles []string `yaml:"roles"`
	// HTTP is the API server shared by the roles (ingest, budget API, health, metrics).
	HTTP HTTPConfig `yaml:"http"`

	Kafka      kafkax.Config    `yaml:"kafka"`
	ClickHouse chx.Config       `yaml:"clickhouse"`
	Telemetry  telemetry.Config `yaml:"telemetry"`
	Tenants    []tenant.Config  `yaml:"tenants"`
	Pricing    pricing.Config   `yaml:"pricing"`
	Collector  collector.Config `yaml:"collector"`
	Processor  processor.Config `yaml:"processor"`
	Sink       sink.Config      `yaml:"sink"`
	Budget     budget.Config    `yaml:"budget"`
	Gateway    gateway.Config   `yaml:"gateway"`
	// Procurement is optional (procurement.go).
	Procurement ProcurementConfig `yaml:"procurement"`
	// Limits are the input bounds every role applies (docs/ingest.md, "Limits").
	Limits limits.Limits `yaml:"limits"`

	// Path is the file the config was loaded from; relative paths inside it
	// are resolved against its directory.
	Path string `yaml:"-"`
}

// HTTPConfig is the `http:` section.
type HTTPConfig struct {
	// Listen address of the API server. Default ":8080". Env TOKENMETER_HTTP_LISTEN overrides.
	Listen string `yaml:"listen"`
	// ReadTimeout bounds reading one whole request, body included, so a
	// slow client cannot hold a connection for minutes. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConnections caps the API server's open connections; more wait to
	// be accepted. With read_timeout it bounds what slow clients can hold
	// (each at most one request buffer). Default 1024.
	MaxConnections int `yaml:"max_connections"`
	// TLS, when cert_file is set, serves the API over TLS; client_ca_file
	// also requires client certificates (mTLS). Bearer tokens still apply.
	TLS collector.TLSConfig `yaml:"tls"`
	// MetricsTokenFile holds the bearer token /metrics requires (env
	// TOKENMETER_METRICS_TOKEN, when set, wins). Without a token /metrics on
	// the API server answers loopback clients only.
	MetricsTokenFile string `yaml:"metrics_token_file"`
	// MetricsListen serves /metrics on a separate listener (no token; for a
	// scraper on a private network) and removes it from the API server.
	// Default "" (on the API server).
	MetricsListen string `yaml:"metrics_listen"`
}

// Has reports whether the role runs in this process.
func (c *Config) Has(role string) bool {
	for _, r := range c.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Load reads a config file: unknown fields are errors, ${VAR} and
// ${VAR:-default} are expanded per value from the environment after parsing
// (internal/confload), defaults are applied, env overrides win, and every
// problem is reported at once by Validate.
func Load(path string) (*Config, error) {
	var cfg Config
	if err := confload.File(path, &cfg); err != nil {
		return nil, fmt.Errorf("config %w", err)
	}
	cfg.Path = path
	cfg.applyEnv()
	cfg.ApplyDefaults()
	return &cfg, nil
}

func (c *Config) applyEnv() {
	if v := os.Getenv("KAFKA_BROKERS"); v != "" {
		c.Kafka.Brokers = splitList(v)
	}
	if v := os.Getenv("CLICKHOUSE_ADDR"); v != "" {
		c.ClickHouse.Addr = v
	}
	if v := os.Getenv("CLICKHOUSE_USER"); v != "" {
		c.ClickHouse.Username = v
	}
	if v := os.Getenv("CLICKHOUSE_PASSWORD"); v != "" {
		c.ClickHouse.Password = v
	}
	if v := os.Getenv("CLICKHOUSE_DATABASE"); v != "" {
		c.ClickHouse.Database = v
	}
	if v := os.Getenv("TOKENMETER_HTTP_LISTEN"); v != "" {
		c.HTTP.Listen = v
	}
	if v := os.Getenv("TOKENMETER_GATEWAY_LISTEN"); v != "" {
		c.Gateway.Listen = v
	}
	if v := os.Getenv("TOKENMETER_ROLES"); v != "" {
		c.Roles = splitList(v)
	}
	if v := os.Getenv("TOKENMETER_LOG_LEVEL"); v != "" {
		c.Telemetry.LogLevel = v
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ApplyDefaults fills unset fields of every section.
func (c *Config) ApplyDefaults() {
	if len(c.Roles) == 0 {
		c.Roles = append([]string(nil), AllRoles...)
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = ":8080"
	}
	if c.HTTP.ReadTimeout == 0 {
		c.HTTP.ReadTimeout = 30 * time.Second
	}
	if c.HTTP.IdleTimeout == 0 {
		c.HTTP.IdleTimeout = 2 * time.Minute
	}
	if c.HTTP.MaxConnections == 0 {
		c.HTTP.MaxConnections = 1024
	}
	c.Limits.ApplyDefaults()
	c.Kafka.ApplyDefaults()
	c.ClickHouse.ApplyDefaults()
	c.Collector.ApplyDefaults()
	c.Processor.ApplyDefaults()
	c.Sink.ApplyDefaults()
	c.Budget.ApplyDefaults()
	c.Gateway.ApplyDefaults()
}

// Validate checks the whole config and joins every problem, each prefixed
// with the path of its section (`sink: batch_rows: must be > 0`).
func (c *Config) Validate() error {
	var errs []error
	section := func(name string, err error) {
		if err == nil {
			return
		}
		for _, e := range configerr.Leaves(err) {
			errs = append(errs, fmt.Errorf("%s%s", name, joinPath(e.Error())))
		}
	}
	for i, r := range c.Roles {
		switch r {
		case RoleCollector, RoleProcessor, RoleSink, RoleBudget, RoleGateway:
		default:
			errs = append(errs, fmt.Errorf("roles[%d]: %q is not one of collector, processor, sink, budget, gateway", i, r))
		}
	}
	section("http", c.HTTP.Validate())
	section("limits", c.Limits.Validate())
	section("kafka", c.Kafka.Validate())
	section("clickhouse", c.ClickHouse.Validate())
	section("telemetry", c.Telemetry.Validate())
	section("tenants", tenant.ValidateAll(c.Tenants))
	section("pricing", c.Pricing.Validate())
	section("collector", c.Collector.Validate())
	section("processor", c.Processor.Validate())
	section("sink", c.Sink.Validate())
	section("budget", c.Budget.Validate())
	section("procurement", c.validateProcurement())
	known := map[string]bool{}
	for _, t := range c.Tenants {
		known[t.ID] = true
	}
	section("budget", c.Budget.CheckTenants(func(id string) bool { return known[id] }))
	if c.Has(RoleGateway) {
		section("gateway", c.Gateway.Validate())
		section("gateway", c.Gateway.CheckTenants(func(id string) bool { return known[id] }))
		if !c.Has(RoleBudget) {
			errs = append(errs, errors.New("roles: the gateway role needs the budget role in the same process (its reservations live there)"))
		}
	}
	errs = append(errs, c.crossChecks()...)
	return errors.Join(errs...)
}

// crossChecks finds settings that are valid alone but wrong together.
func (c *Config) crossChecks() []error {
	var errs []error
	// A processor without prices sends every event to the DLQ; one whose
	// tenants report in another currency than the catalogue's (USD) needs
	// FX rates, or every event is fx_missing.
	if c.Has(RoleProcessor) || c.Has(RoleBudget) || c.Has(RoleGateway) {
		if len(c.Pricing.Catalogues) == 0 {
			errs = append(errs, errors.New("pricing.catalogues: required by the processor and budget roles (without prices every event goes to the DLQ as unknown_model)"))
		}
		for i, t := range c.Tenants {
			if t.ReportingCurrency != "" && t.ReportingCurrency != "USD" && c.Pricing.FX == "" {
				errs = append(errs, fmt.Errorf("pricing.fx: required: tenants[%d] (%s) reports in %s, and costs are priced in USD", i, t.ID, t.ReportingCurrency))
			}
		}
	}
	// The budget role rebuilds a period's spend and the alerts already sent
	// from priced.v1 and alerts.v1 after a restart: they must keep a whole period.
	if c.Has(RoleBudget) {
		need, why := time.Duration(0), ""
		for _, b := range c.Budget.Budgets {
			d, w := 31*24*time.Hour, "a monthly budget"
			if b.Period == "quarter" {
				d, w = 92*24*time.Hour, "a quarterly budget"
			}
			if d > need {
				need, why = d, w
			}
		}
		if need > 0 && c.Kafka.Topics.Retention < need {
			errs = append(errs, fmt.Errorf("kafka.topics.retention: %s is shorter than %s (%s): after a restart the budget role could not rebuild the period's spend or the alerts already sent",
				c.Kafka.Topics.Retention, why, need))
		}
	}
	return errs
}

// joinPath turns "[0].id: x" into "[0].id: x" and "field: x" into ".field: x".
func joinPath(s string) string {
	if strings.HasPrefix(s, "[") {
		return s
	}
	return "." + s
}
