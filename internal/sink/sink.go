// Package sink is the ClickHouse sink role: it consumes tokenmeter.priced.v1,
// outcomes.v1, dlq.v1 and alerts.v1 (read-committed) and writes each record
// exactly once into its ClickHouse table, and through the tables'
// materialized views exactly once into every rollup.
//
// # Exactly once
//
// As ClickHouse's Kafka Connect sink does in its exactly-once mode: before a
// block is inserted, the offset ranges it covers (per topic-partition) are
// written to a ledger (sink_ledger) as pending; the block is inserted with an
// insert_deduplication_token derived from those ranges (and
// deduplicate_blocks_in_dependent_materialized_views, into tables that keep
// a deduplication window); then the ranges are marked done. On every
// partition assignment the sink reads the ledger: it resumes after the last
// done range, and first writes any pending block again — the same ranges
// re-read from Kafka, the same rows, the same token — so whatever part of it
// reached the table and its views before a failure is not stored twice and
// what did not is stored now. This does not depend on the order in which
// materialized views run, nor on any view running at all before a failure.
// Files: sink.go (lifecycle), loop.go (poll loop, flush, drain), batch.go
// (buffers, one block per flush across partitions), insert.go (the steps
// and what breaks where), ledger.go (resume, replay, log checks),
// outcomes.go (outcome dedupe), metrics.go, store.go, reset.go.
//
// # Independence and backpressure
//
// Start returns at once: the sink connects to ClickHouse (and applies the
// schema with AutoMigrate) in the background, retrying until it answers,
// and only then joins the consumer group; Ready says what it waits for.
// Kafka holds everything meanwhile. Memory is bounded by MaxBufferedBytes
// (fetching pauses above it) plus one fetch per broker held by the client;
// while ClickHouse fails the block is retried with exponential backoff,
// fetching stays paused, and the sink catches up once ClickHouse answers.
package sink

import (
	"context"
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/retry"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// Sink is the sink role.
type Sink struct {
	cfg   Config
	ch    chx.Config
	deps  role.Deps
	zoner *zoner
	group string

	store     Store        // set before connected is
	connected atomic.Bool  // store is usable
	closer    func() error // closes the ClickHouse connection opened by run
	cl        *kgo.Client  // the group consumer, owned by run
	admin     *kadm.Client
	tables    map[string]*table // by topic

	// mu guards the buffers and the block in flight; the poll loop holds it
	// while it writes a block, so nothing else may wait for it long.
	mu       sync.Mutex
	parts    map[topicPartition]*partBuf
	bytes    int // buffered across partitions
	buffered int // rows buffered across partitions
	inflight *block
	cuts     int // blocks cut so far (rotates the partition order)
	gens     map[topicPartition]uint32
	paused   bool
	backoff  *retry.Backoff // ClickHouse write retries (cfg.retryPolicy)
	wait     time.Duration  // the current delay; 0 while writes succeed
	retryAt  time.Time
	lastErr  error // last failed block write, nil once one succeeds (pauses fetching)

	// smu guards the partitions stopped for a log mismatch and topic ids.
	smu      sync.Mutex
	stopped  map[topicPartition]string
	topicIDs map[string]string

	// Ready reads these without waiting for mu.
	health     atomic.Pointer[error] // block writes failing
	resumeErr  atomic.Pointer[error] // ledger, log or outcome reads failing
	startErr   atomic.Pointer[error] // not connected yet, or no schema
	startSince time.Time

	stop     chan struct{}
	done     chan struct{}
	abort    context.CancelFunc // cancels inserts once Shutdown's deadline passed
	drainBy  time.Time          // Shutdown's deadline (zero: none), set before stop closes
	stopOnce sync.Once
	killed   atomic.Bool

	m metrics
}

// New builds the role; it validates cfg first. The ClickHouse connection is
// opened after Start, in the background.
func New(cfg Config, ch chx.Config, deps role.Deps) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ch.Validate(); err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	return newSink(cfg, ch, nil, deps)
}

// NewWithStore builds a sink that writes through store instead of opening
// its own connection (tests and benchmarks).
func NewWithStore(cfg Config, store Store, deps role.Deps) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newSink(cfg, chx.Config{}, store, deps)
}

func newSink(cfg Config, ch chx.Config, store Store, deps role.Deps) (*Sink, error) {
	s := &Sink{cfg: cfg, ch: ch, deps: deps, zoner: &zoner{tenants: deps.Tenants}, store: store, backoff: cfg.retryPolicy().Backoff(),
		parts: map[topicPartition]*partBuf{}, gens: map[topicPartition]uint32{},
		stopped: map[topicPartition]string{}, topicIDs: map[string]string{}}
	if store != nil {
		s.connected.Store(true)
	}
	k := deps.Kafka
	s.tables = map[string]*table{
		k.Topics.Priced:   pricedTable,
		k.Topics.Outcomes: outcomesTable,
		k.Topics.DLQ:      dlqTable,
		k.Topics.Alerts:   alertsTable,
	}
	s.group = cfg.Group
	if s.group == "" {
		s.group = k.ClientID + "-sink"
	}
	if err := s.initMetrics(); err != nil {
		return nil, err
	}
	return s, nil
}

// Name implements role.Role.
func (s *Sink) Name() string { return "sink" }

// Start returns at once. In the background the sink connects to ClickHouse
// (retrying until it answers; never exiting the process for it), checks the
// schema is there (or applies it with AutoMigrate), joins the consumer group
// and consumes. fatal receives only errors no retry can fix.
func (s *Sink) Start(_ context.Context, fatal chan<- error) error {
	if s.stop != nil {
		return errors.New("sink: already started")
	}
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	ctx, abort := context.WithCancel(context.Background())
	s.abort = abort
	s.startSince = time.Now()
	if !s.connected.Load() {
		s.setStartErr(errors.New("connecting"))
	}
	go s.run(ctx, fatal)
	return nil
}

// prepare opens the ClickHouse connection and checks the schema, retrying
// until both succeed or the sink stops. It reports whether to go on.
func (s *Sink) prepare(ctx context.Context) bool {
	wait := s.cfg.RetryInitial
	warned := false
	for {
		err := s.prepareOnce(ctx)
		if err == nil {
			s.setStartErr(nil)
			return true
		}
		s.setStartErr(err)
		if !warned && time.Since(s.startSince) > s.cfg.StartupWait {
			s.log().Error("clickhouse still not usable; the sink keeps retrying and catches up from Kafka once it is", "addr", s.ch.Addr, "err", err)
			warned = true
		} else {
			s.log().Warn("clickhouse not usable yet; retrying", "addr", s.ch.Addr, "err", err, "retry_in", wait.String())
		}
		select {
		case <-s.stop:
			return false
		case <-time.After(wait):
		}
		wait = min(wait*2, s.cfg.RetryMax)
	}
}

func (s *Sink) prepareOnce(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := chx.Open(pctx, s.ch)
	cancel()
	if err != nil {
		return fmt.Errorf("clickhouse at %s not reachable: %w", s.ch.Addr, err)
	}
	if s.cfg.AutoMigrate {
		res, err := chx.Migrate(ctx, conn, s.ch)
		if err != nil {
			_ = conn.Close()
			return fmt.Errorf("auto_migrate: %w", err)
		}
		if len(res.Applied) > 0 {
			s.log().Info("clickhouse migrations applied", "applied", res.Applied, "server", res.Server.String())
		}
		if err := chx.SyncTenants(ctx, conn, s.ch.Database, tenantRefs(s.deps.Tenants), time.Now()); err != nil {
			_ = conn.Close()
			return fmt.Errorf("auto_migrate: %w", err)
		}
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'sink_ledger'", s.ch.Database).Scan(&n); err != nil {
		_ = conn.Close()
		return fmt.Errorf("clickhouse: %w", err)
	}
	if n == 0 {
		_ = conn.Close()
		return fmt.Errorf("clickhouse database %s has no tokenmeter schema (table sink_ledger): run `tokenmeter migrate CONFIG` (or set sink.auto_migrate)", s.ch.Database)
	}
	s.closer = conn.Close
	if s.ch.Cluster != "" {
		s.store = NewClusterStore(conn, s.ch.Database, s.ch.InsertQuorum)
	} else {
		s.store = NewStore(conn, s.ch.Database)
	}
	s.connected.Store(true)
	return nil
}

func tenantRefs(r *tenant.Registry) []chx.TenantRef {
	if r == nil {
		return nil
	}
	var out []chx.TenantRef
	for _, t := range r.All() {
		out = append(out, chx.TenantRef{ID: t.ID, TimeZone: t.Location, ReportingCurrency: t.ReportingCurrency})
	}
	return out
}

func (s *Sink) newClient() (*kgo.Client, error) {
	k := s.deps.Kafka
	opts := append(k.ClientOpts(),
		kgo.ConsumerGroup(s.group),
		kgo.ConsumeTopics(k.Topics.Priced, k.Topics.Outcomes, k.Topics.DLQ, k.Topics.Alerts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Rebalance callbacks run only between polls, never during a flush.
		kgo.BlockRebalanceOnPoll(),
		kgo.AdjustFetchOffsetsFn(s.resume),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { s.dropPartitions(m) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { s.dropPartitions(m) }),
		// A resume offset the log no longer has is an error, never a silent
		// jump to the log start or end (ledger.go stops the partition).
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		// Committed offsets are informational (lag); marks are set only after blocks are done.
		kgo.AutoCommitMarks(),
		kgo.FetchMaxBytes(32<<20),
		kgo.FetchMaxPartitionBytes(8<<20),
	)
	if s.deps.MeterProvider != nil {
		kt := kotel.NewKotel(kotel.WithMeter(kotel.NewMeter(kotel.MeterProvider(s.deps.MeterProvider))))
		opts = append(opts, kgo.WithHooks(kt.Hooks()...))
	}
	return kgo.NewClient(opts...)
}

// Shutdown stops fetching, writes what is buffered (retrying until ctx's
// deadline) and leaves the group. What is not written stays in Kafka and is
// read again after a restart, from what the ledger says. Safe to call twice.
func (s *Sink) Shutdown(ctx context.Context) error {
	if s.stop == nil {
		return nil
	}
	s.stopOnce.Do(func() {
		if dl, ok := ctx.Deadline(); ok {
			s.drainBy = dl
		}
		close(s.stop)
	})
	var err error
	select {
	case <-s.done:
	case <-ctx.Done():
		err = fmt.Errorf("sink: drain: %w", ctx.Err())
		// The deadline passed mid-drain: cancel the inserts; the block in
		// flight stays pending in the ledger and is replayed on restart.
		s.abort()
		<-s.done
	}
	s.abort()
	return err
}

// kill abandons the sink the way kill -9 would as far as ClickHouse can
// tell: the loop stops without draining, buffered rows are lost. Tests only.
func (s *Sink) kill() {
	s.killed.Store(true)
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// Ready says which dependency the sink waits for: ClickHouse not reachable
// or without schema, failing writes, unreadable ledger or Kafka offsets, or
// partitions stopped for a log that no longer matches ClickHouse.
func (s *Sink) Ready(ctx context.Context) error {
	if s.stop == nil {
		return errors.New("not started")
	}
	if e := s.startErr.Load(); e != nil {
		return fmt.Errorf("waiting for clickhouse (since %s, Kafka holds the records meanwhile): %w", s.startSince.UTC().Format(time.RFC3339), *e)
	}
	if e := s.resumeErr.Load(); e != nil {
		return fmt.Errorf("cannot resume (retrying): %w", *e)
	}
	if e := s.health.Load(); e != nil {
		return fmt.Errorf("clickhouse failing (fetching paused, retrying): %w", *e)
	}
	s.smu.Lock()
	var stopped []string
	for _, msg := range s.stopped {
		stopped = append(stopped, msg)
	}
	s.smu.Unlock()
	if len(stopped) > 0 {
		sort.Strings(stopped)
		return errors.New(strings.Join(stopped, "; "))
	}
	if !s.connected.Load() {
		return errors.New("clickhouse: not connected")
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.store.Ping(pctx); err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	return nil
}

// failing reports whether anything Ready checks without a round trip fails.
func (s *Sink) failing() bool {
	return s.health.Load() != nil || s.resumeErr.Load() != nil || s.startErr.Load() != nil
}

func (s *Sink) setStartErr(err error)  { storeErr(&s.startErr, err) }
func (s *Sink) setResumeErr(err error) { storeErr(&s.resumeErr, err) }

func storeErr(p *atomic.Pointer[error], err error) {
	if err == nil {
		p.Store(nil)
		return
	}
	p.Store(&err)
}

// publishHealth copies the block-write state for Ready. Callers hold s.mu.
func (s *Sink) publishHealth() { storeErr(&s.health, s.lastErr) }

func (s *Sink) log() interface {
	Info(string, ...any)
	Warn(string, ...any)
	Error(string, ...any)
} {
	if s.deps.Logger == nil {
		return nopLogger{}
	}
	return s.deps.Logger
}

type nopLogger struct{}

func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}
