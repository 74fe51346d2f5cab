package chx

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Protocols the driver can speak to ClickHouse.
const (
	ProtocolNative = "native" // TCP port 9000: batch inserts as native blocks (default)
	ProtocolHTTP   = "http"   // port 8123: for proxies that only pass HTTP; needs ClickHouse >= 21.x
)

// Config is the `clickhouse:` section of a pipeline config.
type Config struct {
	// Addr is host:port of the server (native port 9000, or 8123 with
	// protocol http). Several addresses may be given comma-separated; the
	// driver fails over between them. Default 127.0.0.1:9000. Env
	// CLICKHOUSE_ADDR overrides.
	Addr string `yaml:"addr"`
	// Protocol is "native" (default) or "http".
	Protocol string `yaml:"protocol"`
	// Database holds every tokenmeter table and view; created by `tokenmeter
	// migrate` when missing. Default tokenmeter. Env CLICKHOUSE_DATABASE overrides.
	Database string `yaml:"database"`
	// Username, default "default". Env CLICKHOUSE_USER overrides.
	Username string `yaml:"username"`
	// Password, default empty. Env CLICKHOUSE_PASSWORD overrides; in a file
	// write `password: ${CLICKHOUSE_PASSWORD}`.
	Password string `yaml:"password"`
	// TLS connects with TLS (system roots). Default false.
	TLS bool `yaml:"tls"`
	// DialTimeout bounds connecting. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// Cluster, when set, makes `tokenmeter migrate` create every table ON
	// CLUSTER with Replicated* engines (see deploy/cluster/). Default "":
	// a single server.
	Cluster string `yaml:"cluster"`
	// InsertQuorum, on a cluster, makes every sink insert wait until that
	// many replicas hold it (ClickHouse insert_quorum). With 2 or more, a
	// replica that dies right after an insert cannot take the only copy
	// with it, which exactly-once across replica loss needs; inserts then
	// pause while fewer replicas are up. Default 0 (off). Needs Cluster.
	InsertQuorum int `yaml:"insert_quorum"`
	// Forecasts is a CSV file of monthly forecasts per workflow
	// (tenant,workflow,month,amount,currency; see docs/clickhouse.md) that
	// `tokenmeter migrate` loads into the forecasts table on every run,
	// relative to the config file. Default "": none (or use `tokenmeter
	// forecasts import FILE CONFIG`).
	Forecasts string `yaml:"forecasts"`
	// ReaderUser is the read-only user for analysts and BI tools.
	// `tokenmeter migrate` creates it with CREATE USER (readonly=1, SELECT on
	// the database) when ReaderPassword is set; servers whose users live only
	// in a users file (the local development engine) declare it there (see
	// docs/clickhouse.md). Default "tokenmeter_reader".
	ReaderUser string `yaml:"reader_user"`
	// ReaderPassword for ReaderUser. Empty (default) skips creating the user.
	// Put it in env: `reader_password: ${CLICKHOUSE_READER_PASSWORD}`.
	ReaderPassword string `yaml:"reader_password"`
}

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9000"
	}
	if c.Protocol == "" {
		c.Protocol = ProtocolNative
	}
	if c.Database == "" {
		c.Database = "tokenmeter"
	}
	if c.Username == "" {
		c.Username = "default"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.ReaderUser == "" {
		c.ReaderUser = "tokenmeter_reader"
	}
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("addr: is required"))
	}
	for i, a := range c.Addrs() {
		if !strings.Contains(a, ":") {
			errs = append(errs, fmt.Errorf("addr: entry %d %q must be host:port", i, a))
		}
	}
	switch c.Protocol {
	case ProtocolNative, ProtocolHTTP:
	default:
		errs = append(errs, fmt.Errorf("protocol: %q is not native or http", c.Protocol))
	}
	if !identifier.MatchString(c.Database) {
		errs = append(errs, fmt.Errorf("database: %q must be a plain identifier (%s)", c.Database, identifier))
	}
	if c.Cluster != "" && !identifier.MatchString(c.Cluster) {
		errs = append(errs, fmt.Errorf("cluster: %q must be a plain identifier", c.Cluster))
	}
	if c.ReaderUser != "" && !identifier.MatchString(c.ReaderUser) {
		errs = append(errs, fmt.Errorf("reader_user: %q must be a plain identifier", c.ReaderUser))
	}
	if c.InsertQuorum < 0 || (c.InsertQuorum > 0 && c.Cluster == "") {
		errs = append(errs, errors.New("insert_quorum: needs cluster and must not be negative"))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, errors.New("dial_timeout: must not be negative"))
	}
	return errors.Join(errs...)
}

// Addrs splits Addr into its comma-separated addresses.
func (c *Config) Addrs() []string {
	var out []string
	for _, a := range strings.Split(c.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
