package processor

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/attribution"
	"github.com/tokenmeter/tokenmeter/internal/configerr"
)

// Config is the `processor:` section of a pipeline config.
type Config struct {
	// Group is the Kafka consumer group of all processor processes. Default
	// "tokenmeter-processor". Processes in one group share usage.v1's
	// partitions.
	Group string `yaml:"group"`
	// TransactionalID identifies this process's transactional producer. It
	// must be unique among processes running at the same time and stable
	// across restarts of the same process: on restart the broker then aborts
	// the transaction a killed predecessor left open at once, instead of
	// holding back read-committed consumers until TransactionTimeout.
	// Default "tokenmeter-processor-<hostname>" (fine for one process per
	// host or a StatefulSet; set it, e.g. from ${POD_NAME}, otherwise).
	TransactionalID string `yaml:"transactional_id"`
	// InstanceID, when set, makes this process a static group member
	// (KIP-345): a restarted process with the same InstanceID takes its
	// partitions back at once instead of waiting for SessionTimeout to expel
	// its dead predecessor. Must be unique among running processes. A cleanly
	// stopped static member is only removed after SessionTimeout. Default ""
	// (dynamic membership).
	InstanceID string `yaml:"instance_id"`
	// SessionTimeout is how long the group coordinator waits for a silent
	// member before reassigning its partitions. Default 45s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// TransactionTimeout is how long the broker lets a transaction stay open
	// before aborting it (bounds how long a vanished process can hold back
	// read-committed consumers when its TransactionalID is not reused).
	// Default 30s; must be below the broker's transaction.max.timeout.ms.
	TransactionTimeout time.Duration `yaml:"transaction_timeout"`
	// MaxBatch is the most usage records one transaction processes. Larger
	// batches amortise the per-transaction round trips (about five); smaller
	// ones lower end-to-end latency. Default 2000.
	MaxBatch int `yaml:"max_batch"`
	// Compression is the codec of the processor's produced batches (priced,
	// dedupe, DLQ): none, snappy, lz4 or zstd. Default lz4: on priced.v1
	// records it is about 2x smaller than snappy (franz-go's default) for a
	// few hundred ns per record; zstd halves that again at about twice the
	// CPU (bench/RESULTS.md, BenchmarkCompressPriced).
	Compression string `yaml:"compression"`
	// StartAt is where a group with no committed offsets (a new pipeline, a
	// renamed group, reset offsets) starts reading usage.v1:
	//   - "dedupe_window" (default): at the first record stamped less than
	//     Dedupe.Window ago (less a margin of a tenth of the window, at most
	//     1h). Every event a predecessor group priced from there on is still
	//     in the dedupe log, so re-reading it is recognised as a repeat;
	//     older records are not re-read, because their dedupe entries have
	//     expired and they would be counted twice.
	//   - "earliest": the log start. Only for a topic no processor group has
	//     priced before (or a database you rebuild from scratch): events a
	//     predecessor priced more than Dedupe.Window ago are priced again.
	//   - "latest": only records produced after the group starts.
	// A group with committed offsets always resumes from them. If a
	// predecessor group lagged by more than the window, its unpriced tail is
	// older than the start point: keep the old group name instead.
	StartAt string `yaml:"start_at"`
	// Dedupe configures deduplication by event_id.
	Dedupe DedupeConfig `yaml:"dedupe"`
	// Attribution holds the attribution rules and user → team directory.
	Attribution attribution.Config `yaml:"attribution"`
}

// DedupeConfig configures deduplication by event_id (see docs/processing.md).
type DedupeConfig struct {
	// Window is how long after an event was priced a repeat of its event_id
	// is recognised. Default 168h (7 days). The dedupe topic is created with
	// retention Window + 24h; keep the usage topic's retention at least Window.
	Window time.Duration `yaml:"window"`
	// Topic is the processor's dedupe log: one record per transaction and
	// usage partition listing the events it priced, written in the same
	// transaction as the priced records, partition for partition with the
	// usage topic. Default: the usage topic's name +
	// ".processor-dedupe" (tokenmeter.usage.v1.processor-dedupe), so two
	// pipelines with their own topics on one cluster never share dedupe state.
	// Created on start with as many partitions as the usage topic.
	Topic string `yaml:"topic"`
}

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {
	if c.Group == "" {
		c.Group = "tokenmeter-processor"
	}
	if c.TransactionalID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		c.TransactionalID = "tokenmeter-processor-" + host
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = 30 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 45 * time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 2000
	}
	if c.Compression == "" {
		c.Compression = "lz4"
	}
	if c.Dedupe.Window == 0 {
		c.Dedupe.Window = 7 * 24 * time.Hour
	}
	if c.StartAt == "" {
		c.StartAt = StartAtDedupeWindow
	}
}

// StartAt values (see Config.StartAt).
const (
	StartAtDedupeWindow = "dedupe_window"
	StartAtEarliest     = "earliest"
	StartAtLatest       = "latest"
)

// startOffset is where a group with no committed offsets starts, at now.
func (c *Config) startOffset(now time.Time) kgo.Offset {
	switch c.StartAt {
	case StartAtEarliest:
		return kgo.NewOffset().AtStart()
	case StartAtLatest:
		return kgo.NewOffset().AtEnd()
	default:
		margin := min(c.Dedupe.Window/10, time.Hour)
		return kgo.NewOffset().AfterMilli(now.Add(-c.Dedupe.Window + margin).UnixMilli())
	}
}

// Validate reports every problem at once, each prefixed with its field path.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Group) == "" {
		errs = append(errs, errors.New("group: is required"))
	}
	if strings.TrimSpace(c.TransactionalID) == "" {
		errs = append(errs, errors.New("transactional_id: is required"))
	}
	if c.TransactionTimeout < time.Second {
		errs = append(errs, fmt.Errorf("transaction_timeout: %s is below 1s", c.TransactionTimeout))
	}
	if c.SessionTimeout < 6*time.Second {
		errs = append(errs, fmt.Errorf("session_timeout: %s is below the brokers' usual minimum of 6s", c.SessionTimeout))
	}
	if c.MaxBatch < 1 {
		errs = append(errs, fmt.Errorf("max_batch: must be at least 1; got %d", c.MaxBatch))
	}
	if _, ok := compressionCodecs[c.Compression]; !ok {
		errs = append(errs, fmt.Errorf("compression: %q is not one of none, snappy, lz4, zstd", c.Compression))
	}
	switch c.StartAt {
	case StartAtDedupeWindow, StartAtEarliest, StartAtLatest:
	default:
		errs = append(errs, fmt.Errorf("start_at: %q must be dedupe_window, earliest or latest", c.StartAt))
	}
	if c.Dedupe.Window < time.Minute {
		errs = append(errs, fmt.Errorf("dedupe.window: %s is below 1m", c.Dedupe.Window))
	}
	if err := c.Attribution.Validate(); err != nil {
		for _, e := range configerr.Leaves(err) {
			errs = append(errs, fmt.Errorf("attribution.%w", e))
		}
	}
	return errors.Join(errs...)
}

// Resolved returns c with relative file paths resolved by resolve (the
// pipeline config's directory).
func (c Config) Resolved(resolve func(string) string) Config {
	if resolve != nil {
		c.Attribution.Directory = resolve(c.Attribution.Directory)
	}
	return c
}

var compressionCodecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}
