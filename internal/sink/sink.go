// Package sink is the ClickHouse sink role: it consumes tokenmeter.priced.v1,
// outcomes.v1, dlq.v1 and alerts.v1 (read-committed) and writes each record
// exactly once into its ClickHouse table, and through the tables'
// materialized views exactly once into every rollup.
//
// # Exactly once
//
// Every row carries the Kafka topic, partition and offset it came from.
// Inserts of one partition happen in offset order, each insert holds rows of
// one partition only, and each is a single block that ClickHouse writes
// atomically (one part per table and per materialized view, including the
// sink_offsets ledger). On start and on every partition assignment the sink
// asks ClickHouse for the highest offset it holds per partition and resumes
// right after it; the consumer group's committed offsets are not used to
// resume (they are committed after inserts, for lag monitoring only). So
// an insert that succeeded is never repeated, even if the process died
// before it learned so, and an insert that failed is repeated until it
// succeeds. See flushPartition for each step and what breaks where.
//
// Outcomes are also de-duplicated by (tenant, outcome_id) within each
// outcomes partition: see partBuf.stored and docs/clickhouse.md.
//
// # Backpressure
//
// Memory is bounded by MaxBufferedBytes (fetching pauses above it) plus one
// fetch per broker held by the Kafka client. While ClickHouse fails, inserts
// are retried with exponential backoff, fetching stays paused, Ready reports
// the error, and the sink catches up once ClickHouse answers again.
package sink

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/role"
)

// Sink is the sink role.
type Sink struct {
	cfg   Config
	ch    chx.Config
	deps  role.Deps
	zoner *zoner

	store  Store
	closer func() error // closes the ClickHouse connection opened by Start
	cl     *kgo.Client
	tables map[string]*table // by topic

	mu        sync.Mutex
	parts     map[topicPartition]*partBuf
	bytes     int // buffered across partitions
	paused    bool
	backoff   time.Duration
	retryAt   time.Time
	lastErr   error // last failed insert, nil once inserts succeed again (pauses fetching)
	resumeErr error // last failed read of resume offsets, nil once one succeeded
	// health mirrors lastErr/resumeErr for Ready, which must not wait for
	// s.mu while a slow insert holds it.
	health atomic.Pointer[error]

	stop      chan struct{}
	done      chan struct{}
	stopOnce  sync.Once
	closeOnce sync.Once
	killed    atomic.Bool

	mRows    metric.Int64Counter
	mInserts metric.Int64Counter
	mErrors  metric.Int64Counter
	mLatency metric.Float64Histogram
	mDropped metric.Int64Counter
	mDLQ     metric.Int64Counter
	mDupOut  metric.Int64Counter
}

type topicPartition struct {
	topic     string
	partition int32
}

// partBuf holds one partition's records not yet in ClickHouse, in offset order.
type partBuf struct {
	tp    topicPartition
	rows  []pendingRow
	bytes int
	since time.Time // when the oldest row was buffered
	// uncertain: the last insert failed, so it may or may not have landed;
	// the next flush first asks ClickHouse what it holds.
	uncertain bool
	// Outcome dedupe (outcomes partitions only). stored: the (tenant,
	// outcome_id) pairs ClickHouse holds for this partition, with their
	// event_time: read from ClickHouse on assignment (resumeFromClickHouse)
	// and extended after each successful insert. pending: those of the
	// buffered rows. A record whose pair is in either is not buffered.
	stored  map[outcomeKey]time.Time
	pending map[outcomeKey]struct{}
	pruneAt int // prune stored (entries older than the window) above this size
}

// outcomeKey identifies an outcome for de-duplication.
type outcomeKey struct{ tenant, id string }

type pendingRow struct {
	table  *table
	values []any // including the kafka_* columns
	split  int64
	offset int64
	size   int
	record *kgo.Record // for a dlq row if ClickHouse cannot hold the row
	// okey is set on outcomes rows (okey.id != ""): the dedupe key.
	okey  outcomeKey
	otime time.Time
}

// New builds the role; it validates cfg first. The ClickHouse connection is
// opened by Start.
func New(cfg Config, ch chx.Config, deps role.Deps) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ch.Validate(); err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	s := &Sink{cfg: cfg, ch: ch, deps: deps, zoner: &zoner{tenants: deps.Tenants}}
	if err := s.initMetrics(); err != nil {
		return nil, err
	}
	return s, nil
}

// NewWithStore builds a sink that writes through store instead of opening
// its own connection (tests and benchmarks).
func NewWithStore(cfg Config, store Store, deps role.Deps) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, deps: deps, zoner: &zoner{tenants: deps.Tenants}, store: store}
	if err := s.initMetrics(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Sink) initMetrics() error {
	m := s.deps.Meter
	if m == nil {
		return nil
	}
	var err error
	var errs []error
	s.mRows, err = m.Int64Counter("tokenmeter.sink.rows", metric.WithDescription("rows inserted into ClickHouse, by table"))
	errs = append(errs, err)
	s.mInserts, err = m.Int64Counter("tokenmeter.sink.inserts", metric.WithDescription("insert blocks sent to ClickHouse, by table"))
	errs = append(errs, err)
	s.mErrors, err = m.Int64Counter("tokenmeter.sink.insert_errors", metric.WithDescription("failed ClickHouse inserts or offset reads (retried)"))
	errs = append(errs, err)
	s.mDropped, err = m.Int64Counter("tokenmeter.sink.already_stored", metric.WithDescription("buffered rows skipped because ClickHouse already held them"))
	errs = append(errs, err)
	s.mDLQ, err = m.Int64Counter("tokenmeter.sink.dlq_rows", metric.WithDescription("records the sink itself rejected into the dlq table, by reason (undecodable, unstorable)"))
	errs = append(errs, err)
	s.mDupOut, err = m.Int64Counter("tokenmeter.sink.duplicate_outcomes", metric.WithDescription("outcome records skipped because an outcome with the same tenant and outcome_id is already stored or buffered for the partition"))
	errs = append(errs, err)
	s.mLatency, err = m.Float64Histogram("tokenmeter.sink.insert_duration", metric.WithUnit("s"), metric.WithDescription("duration of one insert block"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	errs = append(errs, err)
	return errors.Join(errs...)
}

// countDLQ counts a record the sink itself turned into a dlq row (DESIGN.md
// invariant 6: every rejection is counted). A record whose row is later
// replaced after a retry may be counted twice; the table holds it once.
func (s *Sink) countDLQ(reason string) {
	if s.mDLQ != nil {
		s.mDLQ.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", reason)))
	}
}

// Name implements role.Role.
func (s *Sink) Name() string { return "sink" }

// Start connects to ClickHouse (waiting up to StartupWait), checks the schema
// is there (or applies it with AutoMigrate) and joins the consumer group.
func (s *Sink) Start(ctx context.Context, fatal chan<- error) error {
	if s.store == nil {
		conn, err := s.connect(ctx)
		if err != nil {
			return err
		}
		s.closer = conn.Close
		s.store = NewStore(conn, s.ch.Database)
		if s.ch.Cluster != "" {
			s.store = NewClusterStore(conn, s.ch.Database, s.ch.InsertQuorum)
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
			if err := chx.SyncTenants(ctx, conn, s.ch.Database, chx.TenantRefs(s.deps.Tenants), time.Now()); err != nil {
				_ = conn.Close()
				return fmt.Errorf("auto_migrate: %w", err)
			}
		}
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'sink_offsets'", s.ch.Database).Scan(&n); err != nil {
			_ = conn.Close()
			return fmt.Errorf("clickhouse: %w", err)
		}
		if n == 0 {
			_ = conn.Close()
			return fmt.Errorf("clickhouse database %s has no tokenmeter schema: run `tokenmeter migrate CONFIG` (or set sink.auto_migrate)", s.ch.Database)
		}
	}

	k := s.deps.Kafka
	s.tables = map[string]*table{
		k.Topics.Priced:   pricedTable,
		k.Topics.Outcomes: outcomesTable,
		k.Topics.DLQ:      dlqTable,
		k.Topics.Alerts:   alertsTable,
	}
	group := s.cfg.Group
	if group == "" {
		group = k.ClientID + "-sink"
	}
	s.parts = map[topicPartition]*partBuf{}
	opts := append(k.ClientOpts(),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(k.Topics.Priced, k.Topics.Outcomes, k.Topics.DLQ, k.Topics.Alerts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Rebalance callbacks run only between polls, never during a flush.
		kgo.BlockRebalanceOnPoll(),
		kgo.AdjustFetchOffsetsFn(s.resumeFromClickHouse),
		kgo.OnPartitionsRevoked(s.dropPartitions),
		kgo.OnPartitionsLost(s.dropPartitions),
		// Committed offsets are informational (lag); marks are set only after inserts.
		kgo.AutoCommitMarks(),
		kgo.FetchMaxBytes(32<<20),
		kgo.FetchMaxPartitionBytes(8<<20),
	)
	if s.deps.MeterProvider != nil {
		kt := kotel.NewKotel(kotel.WithMeter(kotel.NewMeter(kotel.MeterProvider(s.deps.MeterProvider))))
		opts = append(opts, kgo.WithHooks(kt.Hooks()...))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	s.cl = cl
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go s.run()
	return nil
}

func (s *Sink) connect(ctx context.Context) (driver.Conn, error) {
	deadline := time.Now().Add(s.cfg.StartupWait)
	wait := s.cfg.RetryInitial
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := chx.Open(pctx, s.ch)
		cancel()
		if err == nil {
			return conn, nil
		}
		if time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		s.log().Warn("clickhouse not answering yet; retrying", "addr", s.ch.Addr, "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(wait*2, s.cfg.RetryMax)
	}
}

// Shutdown stops fetching, flushes what is buffered (retrying until ctx's
// deadline) and leaves the group. What is not flushed stays in Kafka and is
// read again after a restart, from what ClickHouse holds. Safe to call twice.
func (s *Sink) Shutdown(ctx context.Context) error {
	if s.cl == nil {
		return nil
	}
	s.stopOnce.Do(func() { close(s.stop) })
	var err error
	select {
	case <-s.done:
	case <-ctx.Done():
		err = fmt.Errorf("sink: drain: %w", ctx.Err())
	}
	s.closeOnce.Do(func() {
		s.cl.Close()
		if s.closer != nil {
			if e := s.closer(); e != nil && err == nil {
				err = fmt.Errorf("sink: close clickhouse: %w", e)
			}
		}
	})
	if err != nil {
		// The deadline passed mid-drain: with the client and connection
		// closed the loop fails fast; do not return while it still runs.
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
		}
	}
	return err
}

// kill abandons the sink the way kill -9 would as far as ClickHouse can
// tell: the loop stops without draining, buffered rows are lost. Tests only.
func (s *Sink) kill() {
	s.killed.Store(true)
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	s.closeOnce.Do(func() { s.cl.Close() })
}

// Ready reports not-ready while ClickHouse does not answer or the last
// insert failed (the sink is then paused and retrying).
func (s *Sink) Ready(ctx context.Context) error {
	if s.store == nil {
		return errors.New("not started")
	}
	if last := s.health.Load(); last != nil {
		return fmt.Errorf("clickhouse failing (fetching paused, retrying): %w", *last)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.store.Ping(pctx); err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	return nil
}

// publishHealth copies the failure state for Ready. Callers hold s.mu.
func (s *Sink) publishHealth() {
	err := s.lastErr
	if err == nil {
		err = s.resumeErr
	}
	if err == nil {
		s.health.Store(nil)
		return
	}
	s.health.Store(&err)
}

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

// run is the poll loop: poll, buffer, flush what is due, allow rebalances.
func (s *Sink) run() {
	defer close(s.done)
	// Inserts use their own context: stopping is signalled by s.stop, and a
	// shutdown drain must still be able to insert.
	ctx := context.Background()
	// pollCtx ends when Shutdown asks to stop, so a blocked poll returns.
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	go func() {
		<-s.stop
		stopPolling()
	}()
	for {
		select {
		case <-s.stop:
			if !s.killed.Load() {
				s.drain(ctx)
			}
			return
		default:
		}
		pctx, cancel := context.WithTimeout(pollCtx, s.nextWake(time.Now()))
		fetches := s.cl.PollRecords(pctx, s.cfg.BatchRows)
		cancel()
		if fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			s.log().Warn("kafka fetch error", "topic", topic, "partition", p, "err", err)
		})
		s.mu.Lock()
		now := time.Now()
		fetches.EachRecord(func(r *kgo.Record) { s.add(r, now) })
		s.flushDue(ctx, time.Now(), false)
		s.applyPause()
		s.mu.Unlock()
		s.cl.AllowRebalance()
	}
}

// drain flushes everything buffered, retrying until the flush succeeds or
// the loop is abandoned by Shutdown's deadline. It first reads what is
// already on the topics (the roles upstream stop first, so their last
// records are there) until a poll comes back empty or DrainTail passed:
// after a clean stop ClickHouse holds everything that was accepted.
func (s *Sink) drain(ctx context.Context) {
	deadline := time.Now().Add(drainTail)
	for time.Now().Before(deadline) && !s.failing() {
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		fetches := s.cl.PollRecords(pctx, s.cfg.BatchRows)
		cancel()
		if fetches.IsClientClosed() || fetches.NumRecords() == 0 {
			s.cl.AllowRebalance()
			break
		}
		s.mu.Lock()
		now := time.Now()
		fetches.EachRecord(func(r *kgo.Record) { s.add(r, now) })
		s.flushDue(ctx, now, false)
		s.mu.Unlock()
		s.cl.AllowRebalance()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < 20; i++ {
		if s.flushDue(ctx, time.Now(), true) {
			return
		}
		s.mu.Unlock()
		time.Sleep(max(s.backoff, s.cfg.RetryInitial))
		s.mu.Lock()
	}
}

// drainTail bounds how long a clean stop keeps reading records already on
// the topics.
const drainTail = 5 * time.Second

// failing reports whether ClickHouse inserts or resume reads are failing.
func (s *Sink) failing() bool { return s.health.Load() != nil }

// nextWake is how long the next poll may block: until the oldest buffer is
// due, or until the next retry, at most BatchAge.
func (s *Sink) nextWake(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	wake := s.cfg.BatchAge
	if s.lastErr != nil {
		if d := s.retryAt.Sub(now); d < wake {
			wake = d
		}
	}
	for _, pb := range s.parts {
		if len(pb.rows) > 0 {
			if d := pb.since.Add(s.cfg.BatchAge).Sub(now); d < wake {
				wake = d
			}
		}
	}
	return max(wake, 5*time.Millisecond)
}

// add decodes one record into its partition's buffer. A record that cannot
// be decoded becomes a dlq row in its place (never dropped, never retried).
func (s *Sink) add(r *kgo.Record, now time.Time) {
	tp := topicPartition{r.Topic, r.Partition}
	pb := s.parts[tp]
	if pb == nil {
		pb = &partBuf{tp: tp}
		s.parts[tp] = pb
	}
	t := s.tables[r.Topic]
	var okey outcomeKey
	var otime time.Time
	var row pendingRow
	if t == nil {
		vals, split := sinkDLQ(r, fmt.Errorf("no table for topic %s", r.Topic), now)
		row = pendingRow{table: dlqTable, values: vals, split: split}
	} else if vals, split, err := t.decode(s.zoner, r.Value); err != nil {
		vals, split := sinkDLQ(r, err, now)
		row = pendingRow{table: dlqTable, values: vals, split: split}
		s.log().Warn("undecodable record stored in dlq table", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		s.countDLQ("undecodable")
	} else {
		row = pendingRow{table: t, values: vals, split: split}
		if t == outcomesTable {
			okey, otime = outcomeKeyOf(vals)
			if pb.isDuplicate(okey) {
				if s.mDupOut != nil {
					s.mDupOut.Add(context.Background(), 1)
				}
				if len(pb.rows) == 0 && s.cl != nil {
					// Everything before it is stored: the (informational)
					// committed offset may move past it.
					s.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{r.Topic: {r.Partition: {Epoch: -1, Offset: r.Offset + 1}}})
				}
				return
			}
			if pb.pending == nil {
				pb.pending = map[outcomeKey]struct{}{}
			}
			pb.pending[okey] = struct{}{}
			row.okey, row.otime = okey, otime
		}
	}
	row.values = append(row.values, r.Topic, r.Partition, r.Offset)
	row.offset = r.Offset
	row.record = r
	row.size = len(r.Value) + 64
	if len(pb.rows) == 0 {
		pb.since = now
	}
	pb.rows = append(pb.rows, row)
	pb.bytes += row.size
	s.bytes += row.size
}

// flushDue flushes the partitions whose buffer is full or old enough (all
// of them with force). It reports whether nothing is left to flush. Callers
// hold s.mu.
func (s *Sink) flushDue(ctx context.Context, now time.Time, force bool) bool {
	if s.lastErr != nil && now.Before(s.retryAt) && !force {
		return false
	}
	keys := make([]topicPartition, 0, len(s.parts))
	for tp, pb := range s.parts {
		if len(pb.rows) == 0 {
			continue
		}
		due := force || len(pb.rows) >= s.cfg.BatchRows || pb.bytes >= s.cfg.BatchBytes ||
			!now.Before(pb.since.Add(s.cfg.BatchAge)) || s.bytes >= s.cfg.MaxBufferedBytes
		if due {
			keys = append(keys, tp)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].partition < keys[j].partition
	})
	// Partitions are independent: up to InsertConcurrency of them are
	// inserted at once. Within a partition inserts stay sequential, in
	// offset order (flushPartition), which is what the resume rule needs.
	type result struct {
		freed int
		err   error
	}
	results := make([]result, len(keys))
	sem := make(chan struct{}, s.cfg.InsertConcurrency)
	var wg sync.WaitGroup
	for i, tp := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, pb *partBuf) {
			defer wg.Done()
			defer func() { <-sem }()
			results[i].freed, results[i].err = s.flushPartition(ctx, pb)
		}(i, s.parts[tp])
	}
	wg.Wait()
	var firstErr error
	for _, r := range results {
		s.bytes -= r.freed
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
	}
	if firstErr != nil {
		s.failed(firstErr)
		return false
	}
	if s.lastErr != nil && len(keys) == 0 && s.bytes == 0 {
		// The failed rows belonged to partitions this member lost: nothing
		// is left to retry, the next insert will tell how ClickHouse is.
		s.lastErr, s.backoff = nil, 0
		s.publishHealth()
	}
	if s.lastErr != nil && len(keys) > 0 {
		s.log().Info("clickhouse inserts recovered")
	}
	if len(keys) > 0 {
		s.lastErr, s.backoff = nil, 0
		s.publishHealth()
	}
	for _, pb := range s.parts {
		if len(pb.rows) > 0 && force {
			return false
		}
	}
	return true
}

func (s *Sink) failed(err error) {
	if s.backoff == 0 {
		s.backoff = s.cfg.RetryInitial
	} else {
		s.backoff = min(s.backoff*2, s.cfg.RetryMax)
	}
	s.retryAt = time.Now().Add(s.backoff)
	if s.lastErr == nil {
		s.log().Error("clickhouse insert failed; pausing and retrying", "err", err, "retry_in", s.backoff.String())
	}
	s.lastErr = err
	s.publishHealth()
	if s.mErrors != nil {
		s.mErrors.Add(context.Background(), 1)
	}
}

// flushPartition writes one partition's buffer to ClickHouse.
//
// Order of steps, and what a failure (or kill -9) at each one leaves behind:
//
//  1. If the previous insert of this partition failed, ask ClickHouse for
//     the highest offset it holds (sink_offsets) and drop buffered rows up
//     to it. A failed insert may have landed anyway (the server wrote the
//     block, the answer was lost): this is what keeps a retry from
//     inserting it twice. Failure here: nothing written; retried later.
//  2. Cut the buffer into runs of consecutive rows with the same table and
//     split key (UTC month and tenant-local month: the partition keys of
//     the table and its rollups), at most BatchRows each. Pure computation.
//  3. Insert each run as ONE block, in offset order. ClickHouse writes the
//     block as one part in the table and then one part in each
//     materialized view (rollups, and last the sink_offsets ledger), so the
//     run is stored completely or not at all, rollups included. Because
//     runs go in offset order, "every offset <= max held" is stored, and
//     "everything above it" is not: the resume rule. Failure before the
//     server has the whole block: nothing stored, retried (step 1 first).
//     Failure after: stored; step 1 on retry, or resumeFromClickHouse after
//     a restart, skips it. kill -9 at any point: the buffer is lost, the
//     next owner of the partition resumes from ClickHouse's max offset + 1.
//     Not covered: the ClickHouse server itself dying in the middle of
//     writing one block's parts (between the table and a view), which no
//     client can make atomic without transactions; see docs/clickhouse.md.
//  4. Drop the run from the buffer and mark offset+1 for the group commit.
//     The commit is informational (lag): losing it changes nothing.
func (s *Sink) flushPartition(ctx context.Context, pb *partBuf) (freed int, err error) {
	if pb.uncertain {
		held, err := s.heldOffsets(ctx, pb.tp.topic)
		if err != nil {
			return 0, err
		}
		if max, ok := held[pb.tp.partition]; ok {
			freed += s.skipHeld(pb, max)
		}
		pb.uncertain = false
	}
	for len(pb.rows) > 0 {
		first := pb.rows[0]
		n := 1
		for n < len(pb.rows) && n < s.cfg.BatchRows && pb.rows[n].table == first.table && pb.rows[n].split == first.split {
			n++
		}
		run := pb.rows[:n]
		values := make([][]any, n)
		size := 0
		for i := range run {
			values[i] = run[i].values
			size += run[i].size
		}
		cols := append(append([]string{}, first.table.columns...), kafkaColumns...)
		ictx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
		start := time.Now()
		err := s.store.Insert(ictx, first.table.name, cols, values)
		cancel()
		var rowErr *RowError
		if errors.As(err, &rowErr) && rowErr.Row < n && run[rowErr.Row].table != dlqTable {
			// Nothing was sent: the row is replaced by its dlq row (the
			// record's bytes and the reason) and the run is tried again.
			bad := &pb.rows[rowErr.Row]
			vals, split := sinkDLQ(bad.record, fmt.Errorf("clickhouse cannot store it: %w", rowErr), time.Now())
			bad.table, bad.split = dlqTable, split
			if bad.okey.id != "" {
				// Not stored as an outcome: a later copy may be.
				delete(pb.pending, bad.okey)
				bad.okey = outcomeKey{}
			}
			bad.values = append(vals, bad.record.Topic, bad.record.Partition, bad.record.Offset)
			s.log().Warn("row clickhouse cannot hold stored in dlq table", "topic", pb.tp.topic, "partition", pb.tp.partition, "offset", bad.offset, "err", rowErr.Err)
			s.countDLQ("unstorable")
			continue
		}
		if err != nil {
			pb.uncertain = true
			return freed, fmt.Errorf("%s partition %d: %w", pb.tp.topic, pb.tp.partition, err)
		}
		attrs := metric.WithAttributes(attribute.String("table", first.table.name))
		if s.mRows != nil {
			s.mRows.Add(ctx, int64(n), attrs)
			s.mInserts.Add(ctx, 1, attrs)
			s.mLatency.Record(ctx, time.Since(start).Seconds(), attrs)
		}
		last := run[n-1].offset
		pb.markStored(run)
		pb.rows = pb.rows[n:]
		pb.bytes -= size
		freed += size
		if s.cl != nil {
			s.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{pb.tp.topic: {pb.tp.partition: {Epoch: -1, Offset: last + 1}}})
		}
	}
	if len(pb.rows) == 0 {
		pb.rows = nil
	}
	pb.pruneStored(time.Now().Add(-s.cfg.OutcomeDedupeWindow))
	return freed, nil
}

// outcomeKeyOf reads the dedupe key and event_time from an outcomes row
// (decodeOutcome's column order: outcome_id, event_time, ..., tenant).
func outcomeKeyOf(vals []any) (outcomeKey, time.Time) {
	id, _ := vals[0].(string)
	ts, _ := vals[1].(time.Time)
	tenant, _ := vals[5].(string)
	return outcomeKey{tenant: tenant, id: id}, ts
}

// isDuplicate reports whether an outcome with key k is already stored or
// buffered for this partition. The first copy wins, even if a later one
// carries different content.
func (pb *partBuf) isDuplicate(k outcomeKey) bool {
	if _, ok := pb.stored[k]; ok {
		return true
	}
	_, ok := pb.pending[k]
	return ok
}

// markStored moves the outcome keys of rows ClickHouse now holds from
// pending to stored.
func (pb *partBuf) markStored(rows []pendingRow) {
	for i := range rows {
		if rows[i].okey.id == "" {
			continue
		}
		if pb.stored == nil {
			pb.stored = map[outcomeKey]time.Time{}
		}
		pb.stored[rows[i].okey] = rows[i].otime
		delete(pb.pending, rows[i].okey)
	}
}

// pruneStored forgets stored outcomes older than cutoff once the set has
// doubled since the last prune, keeping memory to about the window's worth
// (what a rebuild from ClickHouse would hold).
func (pb *partBuf) pruneStored(cutoff time.Time) {
	if len(pb.stored) <= max(pb.pruneAt, 4096) {
		return
	}
	for k, ts := range pb.stored {
		if ts.Before(cutoff) {
			delete(pb.stored, k)
		}
	}
	pb.pruneAt = 2 * len(pb.stored)
}

// skipHeld drops the buffered rows ClickHouse already holds and returns
// how many bytes that freed.
func (s *Sink) skipHeld(pb *partBuf, held int64) (freed int) {
	i := 0
	for i < len(pb.rows) && pb.rows[i].offset <= held {
		pb.bytes -= pb.rows[i].size
		freed += pb.rows[i].size
		i++
	}
	if i > 0 {
		pb.markStored(pb.rows[:i])
		pb.rows = pb.rows[i:]
		if s.mDropped != nil {
			s.mDropped.Add(context.Background(), int64(i))
		}
		s.log().Info("skipped rows clickhouse already holds", "topic", pb.tp.topic, "partition", pb.tp.partition, "rows", i, "held_offset", held)
	}
	return freed
}

func (s *Sink) heldOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	qctx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
	defer cancel()
	return s.store.HeldOffsets(qctx, topic)
}

// applyPause pauses fetching while ClickHouse fails or the buffers are
// full, and resumes it otherwise. Callers hold s.mu.
func (s *Sink) applyPause() {
	want := s.lastErr != nil || s.bytes >= s.cfg.MaxBufferedBytes
	if want == s.paused {
		return
	}
	topics := make([]string, 0, len(s.tables))
	for t := range s.tables {
		topics = append(topics, t)
	}
	if want {
		s.cl.PauseFetchTopics(topics...)
	} else {
		s.cl.ResumeFetchTopics(topics...)
	}
	s.paused = want
}

// resumeFromClickHouse runs after the group assigned partitions and fetched
// their committed offsets: it replaces them with ClickHouse's max offset + 1
// (or the log start when ClickHouse holds nothing for the partition). While
// ClickHouse does not answer it retries with backoff, so those partitions
// are not consumed until it does; it gives up only when the group session
// ends (ctx), and the next session asks again.
func (s *Sink) resumeFromClickHouse(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	wait := s.cfg.RetryInitial
	for topic, parts := range offsets {
		var held map[int32]int64
		for {
			var err error
			held, err = s.heldOffsets(ctx, topic)
			if err == nil {
				break
			}
			s.mu.Lock()
			s.resumeErr = err
			s.publishHealth()
			s.mu.Unlock()
			s.log().Warn("cannot read resume offsets from clickhouse; retrying", "topic", topic, "err", err)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			wait = min(wait*2, s.cfg.RetryMax)
		}
		var sets map[int32]map[outcomeKey]time.Time
		if topic == s.deps.Kafka.Topics.Outcomes {
			var err error
			if sets, err = s.outcomeSets(ctx, topic, parts); err != nil {
				return nil, err
			}
		}
		s.mu.Lock()
		s.resumeErr = nil
		s.publishHealth()
		for p := range parts {
			if off, ok := held[p]; ok {
				parts[p] = kgo.NewOffset().At(off + 1).WithEpoch(-1)
			} else {
				parts[p] = kgo.NewOffset().AtStart()
			}
			// Anything still buffered from an earlier assignment is stale.
			s.dropLocked(topicPartition{topic, p})
			if sets != nil {
				s.parts[topicPartition{topic, p}] = &partBuf{tp: topicPartition{topic, p}, stored: sets[p], pruneAt: 2 * len(sets[p])}
			}
		}
		s.mu.Unlock()
		s.log().Info("resuming from clickhouse", "topic", topic, "partitions", len(parts), "held", held)
	}
	return offsets, nil
}

// outcomeSets reads, per assigned outcomes partition, the outcome dedupe
// set from ClickHouse (see Config.OutcomeDedupeWindow), retrying like the
// resume offsets until it succeeds or ctx ends.
func (s *Sink) outcomeSets(ctx context.Context, topic string, parts map[int32]kgo.Offset) (map[int32]map[outcomeKey]time.Time, error) {
	wait := s.cfg.RetryInitial
	out := map[int32]map[outcomeKey]time.Time{}
	for p := range parts {
		for {
			qctx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
			set, err := s.store.OutcomeKeys(qctx, topic, p, s.cfg.OutcomeDedupeWindow)
			cancel()
			if err == nil {
				out[p] = set
				break
			}
			s.mu.Lock()
			s.resumeErr = err
			s.publishHealth()
			s.mu.Unlock()
			s.log().Warn("cannot read stored outcome ids from clickhouse; retrying", "topic", topic, "partition", p, "err", err)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			wait = min(wait*2, s.cfg.RetryMax)
		}
	}
	return out, nil
}

// dropPartitions forgets the buffers of partitions this member no longer
// owns: their next owner re-reads them from what ClickHouse holds.
func (s *Sink) dropPartitions(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, ps := range lost {
		for _, p := range ps {
			s.dropLocked(topicPartition{topic, p})
		}
	}
}

func (s *Sink) dropLocked(tp topicPartition) {
	if pb := s.parts[tp]; pb != nil {
		s.bytes -= pb.bytes
		delete(s.parts, tp)
	}
}
