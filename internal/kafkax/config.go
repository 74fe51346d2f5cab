// Package kafkax holds what every role needs from Kafka: connection config,
// topic names, topic creation through kadm, and the embedded Kafka-protocol
// broker (franz-go's kfake) that `tokenmeter run` uses when no broker is given.
package kafkax

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Config is the `kafka:` section of a pipeline config.
type Config struct {
	// Brokers are seed brokers (host:port). Empty means: start the embedded
	// broker and use it. Env KAFKA_BROKERS (comma-separated) overrides.
	Brokers []string `yaml:"brokers"`
	// ClientID names this process to the brokers. Default "tokenmeter".
	ClientID string `yaml:"client_id"`
	// Embedded configures the embedded broker; ignored when Brokers is set.
	Embedded EmbeddedConfig `yaml:"embedded"`
	// Topics names the topics and how they are created when missing.
	Topics TopicsConfig `yaml:"topics"`
	// TLS enables TLS to the brokers (system roots). Default false.
	TLS bool `yaml:"tls"`
	// SASL, when Mechanism is set, authenticates to the brokers.
	SASL SASLConfig `yaml:"sasl"`
}

// SASLConfig holds SASL credentials (PLAIN or SCRAM-SHA-256/512).
// Put secrets in env: the config file accepts ${VAR}.
type SASLConfig struct {
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// EmbeddedConfig configures the in-process broker.
type EmbeddedConfig struct {
	// Listen is where outside Kafka producers reach the embedded broker.
	// Default "127.0.0.1:9092".
	Listen string `yaml:"listen"`
	// DataDir persists the embedded broker's log across restarts. Default
	// ".local/embedded-kafka". Empty string after defaults means in memory only.
	DataDir string `yaml:"data_dir"`
	// Fsync makes the broker fsync each produced batch to the data
	// directory before acknowledging it, so a 2xx survives a host crash or
	// power cut, not only kill -9. Default true. false trades that for
	// throughput: writes then reach the disk when the OS flushes them (on
	// segment roll and shutdown at the latest), as Apache Kafka does by
	// default, where replication instead of fsync covers a host crash.
	Fsync *bool `yaml:"fsync"`
	// SASL, when Username is set, makes the embedded broker require
	// SCRAM-SHA-256 with these credentials; the roles in this process use
	// them too. Without it any process that can reach Listen can produce
	// records as any tenant, so Listen must then be a loopback address
	// (validate checks this). Put the password in env: the config file
	// accepts ${VAR}.
	SASL EmbeddedSASL `yaml:"sasl"`
}

// EmbeddedSASL is the embedded broker's one SCRAM-SHA-256 user.
type EmbeddedSASL struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// FsyncOn reports whether the embedded broker fsyncs before acknowledging.
func (e EmbeddedConfig) FsyncOn() bool { return e.Fsync == nil || *e.Fsync }

// TopicsConfig names every topic and how a missing one is created. Existing
// topics are never altered: a difference in partition count is logged only.
type TopicsConfig struct {
	Usage    string `yaml:"usage"`    // default tokenmeter.usage.v1
	Priced   string `yaml:"priced"`   // default tokenmeter.priced.v1
	Outcomes string `yaml:"outcomes"` // default tokenmeter.outcomes.v1
	DLQ      string `yaml:"dlq"`      // default tokenmeter.dlq.v1
	Alerts   string `yaml:"alerts"`   // default tokenmeter.alerts.v1
	// Partitions for created topics. Default 6; more partitions allow more
	// processes per role (one workflow always stays on one partition).
	Partitions int32 `yaml:"partitions"`
	// ReplicationFactor for created topics. Default 1 (use 3 on a cluster).
	ReplicationFactor int16 `yaml:"replication_factor"`
	// Retention for created topics. Default 2232h (93 days): the budget role
	// rebuilds a whole calendar quarter from priced.v1 and alerts.v1 after a
	// restart, so with budgets it must cover the longest budget period
	// (validate checks this). Without budgets, 7 days (the dedupe window) is enough.
	Retention time.Duration `yaml:"retention"`
}

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {
	if c.ClientID == "" {
		c.ClientID = "tokenmeter"
	}
	if c.Embedded.Listen == "" {
		c.Embedded.Listen = "127.0.0.1:9092"
	}
	t := &c.Topics
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&t.Usage, event.TopicUsage)
	def(&t.Priced, event.TopicPriced)
	def(&t.Outcomes, event.TopicOutcomes)
	def(&t.DLQ, event.TopicDLQ)
	def(&t.Alerts, event.TopicAlerts)
	if t.Partitions == 0 {
		t.Partitions = 6
	}
	if t.ReplicationFactor == 0 {
		t.ReplicationFactor = 1
	}
	if t.Retention == 0 {
		t.Retention = 93 * 24 * time.Hour
	}
}

// Embedded reports whether the config asks for the embedded broker.
func (c *Config) UsesEmbedded() bool { return len(c.Brokers) == 0 }

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	for i, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("brokers[%d]: %q must be host:port", i, b))
		}
	}
	if c.Topics.Partitions < 1 {
		errs = append(errs, errors.New("topics.partitions: must be at least 1"))
	}
	if c.Topics.ReplicationFactor < 1 {
		errs = append(errs, errors.New("topics.replication_factor: must be at least 1"))
	}
	if c.UsesEmbedded() {
		e := c.Embedded
		if (e.SASL.Username == "") != (e.SASL.Password == "") {
			errs = append(errs, errors.New("embedded.sasl: username and password must be set together"))
		}
		if host, _, err := net.SplitHostPort(e.Listen); err != nil {
			errs = append(errs, fmt.Errorf("embedded.listen: %q is not host:port: %v", e.Listen, err))
		} else if ip := net.ParseIP(host); e.SASL.Username == "" && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			errs = append(errs, fmt.Errorf("embedded.listen: %q is not a loopback address: without embedded.sasl any host that reaches it could produce records as any tenant (set embedded.sasl or listen on 127.0.0.1)", e.Listen))
		}
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		errs = append(errs, fmt.Errorf("sasl.mechanism: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASL.Mechanism))
	}
	names := map[string]string{}
	for field, name := range map[string]string{"usage": c.Topics.Usage, "priced": c.Topics.Priced,
		"outcomes": c.Topics.Outcomes, "dlq": c.Topics.DLQ, "alerts": c.Topics.Alerts} {
		if other, dup := names[name]; dup {
			errs = append(errs, fmt.Errorf("topics.%s: %q is also used by topics.%s", field, name, other))
		}
		names[name] = field
	}
	return errors.Join(errs...)
}

// All lists every topic name.
func (t TopicsConfig) All() []string {
	return []string{t.Usage, t.Priced, t.Outcomes, t.DLQ, t.Alerts}
}
