package collector

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/ingest"
)

// Config is the `collector:` section of a pipeline config.
type Config struct {
	// MaxBodyBytes caps one request body after decompression (HTTP JSON and
	// OTLP, gzip/zstd bombs included); larger bodies get 413. Default 8 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxItems caps the events in one HTTP request; more get 413. Default
	// 10000. Must not exceed producer.max_buffered_records, or such a request
	// could never be accepted.
	MaxItems int `yaml:"max_items"`
	// RetryAfter is the Retry-After a 503 carries (whole seconds, at least 1).
	// Default 1s.
	RetryAfter time.Duration `yaml:"retry_after"`

	Producer ProducerConfig `yaml:"producer"`
	OTLP     OTLPConfig     `yaml:"otlp"`
	// Attributes names extra OTLP span/resource attributes read as sources of
	// attribution fields, tried before the built-in GenAI names.
	Attributes AttributesConfig `yaml:"attributes"`
}

// ProducerConfig bounds the Kafka producer. The collector answers only after
// the broker acknowledged (acks=all, idempotent), so these bound memory and
// latency, not durability.
type ProducerConfig struct {
	// MaxBufferedRecords is how many records may wait for acknowledgement;
	// a request that would exceed it gets 503 + Retry-After. Default 100000.
	MaxBufferedRecords int64 `yaml:"max_buffered_records"`
	// MaxBufferedBytes is the same bound in bytes of record values. Default 256 MiB.
	MaxBufferedBytes int64 `yaml:"max_buffered_bytes"`
	// DeliveryTimeout fails records the broker has not acknowledged in this
	// long (the request then gets 503). Default 30s.
	DeliveryTimeout time.Duration `yaml:"delivery_timeout"`
	// Linger is how long a partition batch waits for more records. Default
	// 0 (send as soon as possible; batches still form while a request is in flight).
	Linger time.Duration `yaml:"linger"`
}

// OTLPConfig configures the OTLP trace receivers.
type OTLPConfig struct {
	// GRPCListen is the OTLP/gRPC address. Default ":4317"; "" disables it.
	GRPCListen *string `yaml:"grpc_listen"`
	// HTTPListen is the OTLP/HTTP address (POST /v1/traces, protobuf or JSON).
	// Default ":4318"; "" disables it.
	HTTPListen *string `yaml:"http_listen"`
	// ReadTimeout bounds reading one OTLP/HTTP request, body included (a
	// slow sender is dropped, as on the API server). Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// TLS, when cert_file is set, serves both OTLP listeners over TLS.
	// (The main API server has its own, http.tls.)
	TLS TLSConfig `yaml:"tls"`
	// CallMemoryWindow is how long the collector remembers which span
	// reported a model call (tenant, trace, gen_ai.response.id), so a second
	// span of the same call in a later export is counted as a duplicate
	// instead of a second call. Default 10m. Per collector process.
	CallMemoryWindow time.Duration `yaml:"call_memory_window"`
	// CallMemoryMax bounds the calls remembered (oldest forgotten first).
	// Default 200000 (a few tens of MB at most).
	CallMemoryMax int `yaml:"call_memory_max"`
}

// TLSConfig is a server certificate and, for mTLS, the CA clients must present a certificate from.
type TLSConfig struct {
	// CertFile and KeyFile are PEM files; both or neither. Default: none (plain text).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, requires and verifies client certificates (mTLS).
	// Needs cert_file. Bearer tokens are still required.
	ClientCAFile string `yaml:"client_ca_file"`
}

// Validate reports every problem of t, each prefixed "tls".
func (t TLSConfig) Validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("tls: cert_file and key_file must be set together")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		bad("tls.client_ca_file: needs cert_file and key_file (mTLS is on top of TLS)")
	}
	for _, f := range [][2]string{{"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile}, {"tls.client_ca_file", t.ClientCAFile}} {
		if f[1] == "" {
			continue
		}
		if _, err := os.Stat(f[1]); err != nil {
			bad("%s: %v", f[0], err)
		}
	}
	return errs
}

// AttributesConfig lists attribute names per event field, first match wins,
// tried before the built-in names (see docs/ingest.md).
type AttributesConfig struct {
	Workflow       []string `yaml:"workflow"`
	Team           []string `yaml:"team"`
	PromptVersion  []string `yaml:"prompt_version"`
	PromptTemplate []string `yaml:"prompt_template"`
	Application    []string `yaml:"application"`
	Environment    []string `yaml:"environment"`
	UserID         []string `yaml:"user_id"`
	// Keep names more span/resource attributes (exact or glob with '*') to
	// copy into the event's attributes map, where attribution rules match
	// `attributes.<key>`; added to ingest.DefaultKeptAttributes.
	Keep []string `yaml:"keep"`
}

// Sources merges the configured names in front of the defaults.
func (a AttributesConfig) Sources() ingest.AttributeSources {
	d := ingest.DefaultAttributeSources()
	j := func(cfg, def []string) []string { return append(append([]string(nil), cfg...), def...) }
	return ingest.AttributeSources{
		Workflow:       j(a.Workflow, d.Workflow),
		Team:           j(a.Team, d.Team),
		PromptVersion:  j(a.PromptVersion, d.PromptVersion),
		PromptTemplate: j(a.PromptTemplate, d.PromptTemplate),
		Application:    j(a.Application, d.Application),
		Environment:    j(a.Environment, d.Environment),
		UserID:         j(a.UserID, d.UserID),
		Keep:           j(a.Keep, d.Keep),
	}
}

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 8 << 20
	}
	if c.MaxItems == 0 {
		c.MaxItems = 10000
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = time.Second
	}
	p := &c.Producer
	if p.MaxBufferedRecords == 0 {
		p.MaxBufferedRecords = 100000
	}
	if p.MaxBufferedBytes == 0 {
		p.MaxBufferedBytes = 256 << 20
	}
	if p.DeliveryTimeout == 0 {
		p.DeliveryTimeout = 30 * time.Second
	}
	if c.OTLP.CallMemoryWindow == 0 {
		c.OTLP.CallMemoryWindow = 10 * time.Minute
	}
	if c.OTLP.CallMemoryMax == 0 {
		c.OTLP.CallMemoryMax = 200000
	}
	if c.OTLP.GRPCListen == nil {
		s := ":4317"
		c.OTLP.GRPCListen = &s
	}
	if c.OTLP.ReadTimeout == 0 {
		c.OTLP.ReadTimeout = 30 * time.Second
	}
	if c.OTLP.HTTPListen == nil {
		s := ":4318"
		c.OTLP.HTTPListen = &s
	}
}

// Validate reports every problem at once, each prefixed with its field path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.MaxBodyBytes < 1 {
		bad("max_body_bytes: must be at least 1; got %d", c.MaxBodyBytes)
	}
	if c.MaxItems < 1 {
		bad("max_items: must be at least 1; got %d", c.MaxItems)
	}
	if c.RetryAfter < time.Second {
		bad("retry_after: must be at least 1s; got %s", c.RetryAfter)
	}
	if c.Producer.MaxBufferedRecords < 1 {
		bad("producer.max_buffered_records: must be at least 1; got %d", c.Producer.MaxBufferedRecords)
	} else if int64(c.MaxItems) > c.Producer.MaxBufferedRecords {
		bad("max_items: %d exceeds producer.max_buffered_records (%d): such a request could never be accepted", c.MaxItems, c.Producer.MaxBufferedRecords)
	}
	if c.Producer.MaxBufferedBytes < 1 {
		bad("producer.max_buffered_bytes: must be at least 1; got %d", c.Producer.MaxBufferedBytes)
	}
	if c.Producer.DeliveryTimeout < 0 {
		bad("producer.delivery_timeout: must not be negative")
	}
	if c.OTLP.ReadTimeout < 0 {
		bad("otlp.read_timeout: must not be negative")
	}
	if c.Producer.Linger < 0 {
		bad("producer.linger: must not be negative")
	}
	for _, l := range []struct {
		name string
		addr *string
	}{{"otlp.grpc_listen", c.OTLP.GRPCListen}, {"otlp.http_listen", c.OTLP.HTTPListen}} {
		if l.addr != nil && *l.addr != "" {
			if _, _, err := net.SplitHostPort(*l.addr); err != nil {
				bad("%s: %q is not host:port: %v", l.name, *l.addr, err)
			}
		}
	}
	if g, h := c.OTLP.GRPCListen, c.OTLP.HTTPListen; g != nil && h != nil && *g != "" && *g == *h && !strings.HasSuffix(*g, ":0") {
		bad("otlp.http_listen: %q is also otlp.grpc_listen", *h)
	}
	for _, e := range c.OTLP.TLS.Validate() {
		bad("otlp.%v", e)
	}
	if c.OTLP.CallMemoryWindow < 0 {
		bad("otlp.call_memory_window: must not be negative; got %s", c.OTLP.CallMemoryWindow)
	}
	if c.OTLP.CallMemoryMax < 0 {
		bad("otlp.call_memory_max: must not be negative; got %d", c.OTLP.CallMemoryMax)
	}
	a := c.Attributes
	for _, l := range []struct {
		name  string
		names []string
	}{{"workflow", a.Workflow}, {"team", a.Team}, {"prompt_version", a.PromptVersion}, {"prompt_template", a.PromptTemplate},
		{"application", a.Application}, {"environment", a.Environment}, {"user_id", a.UserID}, {"keep", a.Keep}} {
		for i, n := range l.names {
			if n == "" {
				bad("attributes.%s[%d]: must not be empty", l.name, i)
			}
		}
	}
	return errors.Join(errs...)
}
