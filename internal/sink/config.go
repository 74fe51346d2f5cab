package sink

import (
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/retry"
	"time"
)

// MaxInsertBlockRows is ClickHouse's default max_insert_block_size. An
// insert of at most this many rows reaches the server as one block, which a
// MergeTree table (and each materialized view) writes as one part: the unit
// that is atomic. BatchRows may not exceed it.
const MaxInsertBlockRows = 1_048_576

// Config is the `sink:` section of a pipeline config.
type Config struct {
	// Group is the Kafka consumer group of the sink. Default
	// "<kafka.client_id>-sink". The group's committed offsets are only for
	// lag monitoring: the sink resumes from what ClickHouse holds.
	Group string `yaml:"group"`
	// BatchRows flushes when the buffers of all partitions together hold
	// this many rows; one block (one insert per table, covering every
	// partition with rows) holds at most this many. Default 100000; at most
	// 1048576 (ClickHouse's max_insert_block_size).
	BatchRows int `yaml:"batch_rows"`
	// BatchBytes flushes when the buffered records' values add up to this
	// many bytes. Default 64 MiB.
	BatchBytes int `yaml:"batch_bytes"`
	// BatchAge flushes when the oldest buffered row has waited this long:
	// the bound on how stale ClickHouse is. Default 1s.
	BatchAge time.Duration `yaml:"batch_age"`
	// MaxBufferedBytes caps the records held across all partitions; above it
	// fetching pauses until inserts catch up (and while ClickHouse is down).
	// Default 256 MiB; must be at least BatchBytes.
	MaxBufferedBytes int `yaml:"max_buffered_bytes"`
	// InsertConcurrency is how many tables of one block are inserted at the
	// same time (dlq always after the others). Default 4.
	InsertConcurrency int `yaml:"insert_concurrency"`
	// InsertTimeout bounds one insert. Default 30s.
	InsertTimeout time.Duration `yaml:"insert_timeout"`
	// RetryInitial is the first wait after a failed insert; each further
	// failure doubles it up to RetryMax. Defaults 200ms and 10s.
	RetryInitial time.Duration `yaml:"retry_initial"`
	RetryMax     time.Duration `yaml:"retry_max"`
	// StartupWait is how long the sink waits for a usable ClickHouse before
	// it logs an error; it keeps retrying after that and never exits the
	// process for it (Kafka holds the records). Default 30s.
	StartupWait time.Duration `yaml:"startup_wait"`
	// AutoMigrate applies the ClickHouse migrations and syncs the tenants
	// reference table on start, as `tokenmeter migrate` does. Default false
	// (run `tokenmeter migrate CONFIG` as a deploy step); the demo turns it on.
	AutoMigrate bool `yaml:"auto_migrate"`
	// OutcomeDedupeWindow is how far back (by event_time) the sink
	// remembers the (tenant, outcome_id) pairs it stored, per outcomes
	// partition, to drop re-sent outcomes (a client retrying POST
	// /v1/outcomes after a partial acknowledgement). On every partition
	// assignment the set is rebuilt from the outcomes table rows of that
	// partition with event_time >= now - window; a duplicate whose first
	// copy is older than that is stored again. Memory: roughly 100 bytes
	// per remembered outcome. Default 168h; must be > 0.
	OutcomeDedupeWindow time.Duration `yaml:"outcome_dedupe_window"`
}

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {
	if c.BatchRows == 0 {
		c.BatchRows = 100_000
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = 64 << 20
	}
	if c.BatchAge == 0 {
		c.BatchAge = time.Second
	}
	if c.MaxBufferedBytes == 0 {
		c.MaxBufferedBytes = 256 << 20
	}
	if c.InsertConcurrency == 0 {
		c.InsertConcurrency = 4
	}
	if c.InsertTimeout == 0 {
		c.InsertTimeout = 30 * time.Second
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = 200 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 10 * time.Second
	}
	if c.StartupWait == 0 {
		c.StartupWait = 30 * time.Second
	}
	if c.OutcomeDedupeWindow == 0 {
		c.OutcomeDedupeWindow = 168 * time.Hour
	}
}

// Validate reports every problem at once, each prefixed with its field path.
func (c *Config) Validate() error {
	var errs []error
	if c.BatchRows < 1 || c.BatchRows > MaxInsertBlockRows {
		errs = append(errs, fmt.Errorf("batch_rows: %d must be between 1 and %d (max_insert_block_size)", c.BatchRows, MaxInsertBlockRows))
	}
	if c.BatchBytes < 1 {
		errs = append(errs, errors.New("batch_bytes: must be > 0"))
	}
	if c.BatchAge <= 0 {
		errs = append(errs, errors.New("batch_age: must be > 0"))
	}
	if c.MaxBufferedBytes < c.BatchBytes {
		errs = append(errs, fmt.Errorf("max_buffered_bytes: %d must be at least batch_bytes (%d)", c.MaxBufferedBytes, c.BatchBytes))
	}
	if c.InsertConcurrency < 1 {
		errs = append(errs, errors.New("insert_concurrency: must be at least 1"))
	}
	if c.InsertTimeout <= 0 {
		errs = append(errs, errors.New("insert_timeout: must be > 0"))
	}
	if c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial {
		errs = append(errs, errors.New("retry_initial, retry_max: need 0 < retry_initial <= retry_max"))
	}
	if c.StartupWait < 0 {
		errs = append(errs, errors.New("startup_wait: must not be negative"))
	}
	if c.OutcomeDedupeWindow <= 0 {
		errs = append(errs, errors.New("outcome_dedupe_window: must be > 0"))
	}
	return errors.Join(errs...)
}

// retryPolicy is the sink's ClickHouse retry policy (internal/retry).
func (c Config) retryPolicy() retry.Policy {
	return retry.Policy{Initial: c.RetryInitial, Max: c.RetryMax}
}
