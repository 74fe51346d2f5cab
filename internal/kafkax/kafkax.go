package kafkax

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// ClientOpts returns the base franz-go options for this config (seeds, client
// id, TLS, SASL). Roles add their own (groups, transactions, topics).
func (c *Config) ClientOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
	}
	if c.TLS {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha512Mechanism()))
	}
	return opts
}

// Embedded is a running in-process Kafka-protocol broker.
type Embedded struct {
	cluster *kfake.Cluster
	addrs   []string
}

// StartEmbedded starts the embedded broker on cfg.Listen, persisting to cfg.DataDir.
// A port already in use is reported as such.
func StartEmbedded(cfg EmbeddedConfig, partitions int32) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("kafka.embedded.listen: %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("kafka.embedded.listen: port %q: %w", portStr, err)
	}
	// Probe the port ourselves so a clash gives a clear one-line error.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka broker: cannot listen on %s (port in use?): %w", cfg.Listen, err)
	}
	_ = ln.Close()
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, portStr))
		}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.FsyncOn() {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	if cfg.SASL.Username != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", cfg.SASL.Username, cfg.SASL.Password))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka broker: %w", err)
	}
	return &Embedded{cluster: c, addrs: c.ListenAddrs()}, nil
}

// Addrs are the broker addresses to give clients.
func (e *Embedded) Addrs() []string { return e.addrs }

// Close stops the broker, flushing its data directory. Safe to call twice.
func (e *Embedded) Close() {
	if e == nil || e.cluster == nil {
		return
	}
	e.cluster.Close()
	e.cluster = nil
}

// EnsureTopics creates the missing topics with the configured partitions,
// replication and retention. Existing topics are never altered; a partition
// count different from the config is logged.
func EnsureTopics(ctx context.Context, cl *kgo.Client, t TopicsConfig, log *slog.Logger, names ...string) error {
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var missing []string
	for _, n := range names {
		d, ok := details[n]
		if !ok || errors.Is(d.Err, kerrUnknownTopic) {
			missing = append(missing, n)
			continue
		}
		if d.Err != nil {
			return fmt.Errorf("topic %s: %w", n, d.Err)
		}
		if got := int32(len(d.Partitions)); got != t.Partitions && log != nil {
			log.Warn("existing topic differs from config; not altering it", "topic", n, "partitions", got, "configured", t.Partitions)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	// Every tokenmeter topic expires by time (a cluster default of
	// compaction would keep one record per key and lose events).
	retention, del := strconv.FormatInt(t.Retention.Milliseconds(), 10), "delete"
	resp, err := adm.CreateTopics(ctx, t.Partitions, t.ReplicationFactor, map[string]*string{"retention.ms": &retention, "cleanup.policy": &del}, missing...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerrTopicExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
		if r.Err == nil && log != nil {
			log.Info("created topic", "topic", r.Topic, "partitions", t.Partitions, "replication", t.ReplicationFactor)
		}
	}
	return nil
}

// Ping checks that a broker answers a metadata request within the context.
func Ping(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}
