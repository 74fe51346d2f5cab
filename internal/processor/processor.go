// Package processor is the processor role: it consumes tokenmeter.usage.v1,
// validates, deduplicates, attributes and prices every event, and produces
// tokenmeter.priced.v1 exactly once, with rejects on tokenmeter.dlq.v1 in
// the same transaction.
//
// Exactly-once design (docs/processing.md has the long form). One loop per
// process, one Kafka transaction per polled batch:
//
//  1. poll a batch of usage records (read-committed, group member);
//  2. rebuild, for any partition seen for the first time since it was
//     assigned, the dedupe memory from the dedupe topic;
//  3. begin a transaction; for each record produce either a priced record
//     plus a dedupe record, or a DLQ record, or nothing (an identical
//     duplicate);
//  4. flush; if any produce failed, abort;
//  5. commit the batch's consumer offsets inside the transaction
//     (TxnOffsetCommit) and end it (EndTxn commit).
//
// Either everything of a batch becomes visible to read-committed consumers
// (priced, DLQ and dedupe records, and the offsets past the batch), or none
// of it does and the batch is read again from the last committed offsets.
package processor

import (
	"context"
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/retry"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"

	"github.com/tokenmeter/tokenmeter/internal/attribution"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/role"
)

// Processor is the processor role.
type Processor struct {
	cfg    Config
	deps   role.Deps
	log    *slog.Logger
	prices Pricer
	attr   *attribution.Attributor
	m      *metrics
	hooks  []kgo.Hook // kotel: broker request and produce/fetch metrics on /metrics
	now    func() time.Time
	// fxWarned is the stale FX date last warned about (one log line per date).
	fxWarned string

	mu       sync.Mutex
	epochs   map[int32]uint64 // bumped on every assignment and revocation of a usage partition
	owned    map[int32]bool
	sess     *kgo.GroupTransactSession
	loading  []int32 // partitions whose dedupe memory is being rebuilt
	problem  error   // last session failure, cleared by the next commit
	started  bool
	stopPoll context.CancelFunc
	hardStop context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// New builds the role; it validates cfg first and loads the attribution
// directory.
func New(cfg Config, prices *pricing.Engine, deps role.Deps) (*Processor, error) {
	if prices == nil {
		return nil, errors.New("a pricing engine is required")
	}
	return NewWithPricer(cfg, prices, deps)
}

// NewWithPricer is New with any Pricer (tests, benchmarks).
func NewWithPricer(cfg Config, prices Pricer, deps role.Deps) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Tenants == nil {
		return nil, errors.New("a tenant registry is required")
	}
	if cfg.Dedupe.Topic == "" {
		cfg.Dedupe.Topic = deps.Kafka.Topics.Usage + ".processor-dedupe"
	}
	attr, err := attribution.Load(cfg.Attribution)
	if err != nil {
		return nil, fmt.Errorf("attribution: %w", err)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Meter)
	if err != nil {
		return nil, err
	}
	log.Info("processor configured", "group", cfg.Group, "transactional_id", cfg.TransactionalID,
		"dedupe_topic", cfg.Dedupe.Topic, "dedupe_window", cfg.Dedupe.Window.String(), "attribution", attr.String())
	p := &Processor{
		cfg: cfg, deps: deps, log: log, prices: prices, attr: attr, m: m, now: time.Now,
		epochs: map[int32]uint64{}, owned: map[int32]bool{}, done: make(chan struct{}),
	}
	if deps.MeterProvider != nil {
		p.hooks = kotel.NewKotel(kotel.WithMeter(kotel.NewMeter(kotel.MeterProvider(deps.MeterProvider)))).Hooks()
	}
	return p, nil
}

// Name implements role.Role.
func (p *Processor) Name() string { return "processor" }

// Start checks the topics, creates the dedupe topic if missing and starts the
// processing loop. Fatal configuration problems found later (none expected)
// are sent to fatal.
func (p *Processor) Start(ctx context.Context, fatal chan<- error) error {
	if err := p.ensureDedupeTopic(ctx); err != nil {
		return err
	}
	// Polling stops on Shutdown, not when ctx ends: the collector, stopped
	// before us, may still be flushing into usage.v1.
	base := context.WithoutCancel(ctx)
	pollCtx, stopPoll := context.WithCancel(base)
	hardCtx, hardStop := context.WithCancel(base)
	p.mu.Lock()
	p.started, p.stopPoll, p.hardStop = true, stopPoll, hardStop
	p.mu.Unlock()
	go p.run(pollCtx, hardCtx, fatal)
	return nil
}

// Shutdown stops fetching, lets the batch in hand commit (or abort when ctx
// expires first), leaves the group and closes the client. Safe to call twice.
func (p *Processor) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	started := p.started
	p.mu.Unlock()
	if !started {
		return nil
	}
	p.catchUp(ctx)
	p.stopOnce.Do(p.stopPoll)
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		// Out of time: abort the transaction in hand (it is re-read by the
		// next owner, nothing is lost) and close.
		p.hardStop()
		<-p.done
		return fmt.Errorf("processor shutdown: %w (open transaction aborted)", ctx.Err())
	}
}

// catchUp is the first step of a drain: before polling stops, it waits
// until this member's usage partitions are processed (the group's committed
// offsets reach each partition's end as it is when Shutdown starts; the
// collector has stopped intake by then), for at most half of ctx's
// remaining time. So a clean stop prices what was acknowledged, and the
// sink, stopped after the processor, stores it. Out of time, the rest stays
// in Kafka for the next start.
func (p *Processor) catchUp(ctx context.Context) {
	p.mu.Lock()
	sess := p.sess
	owned := make([]int32, 0, len(p.owned))
	for part, ok := range p.owned {
		if ok {
			owned = append(owned, part)
		}
	}
	p.mu.Unlock()
	if sess == nil || len(owned) == 0 {
		return
	}
	cctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		cctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/2))
		defer cancel()
	}
	topic := p.deps.Kafka.Topics.Usage
	adm := kadm.NewClient(sess.Client())
	ends, err := adm.ListEndOffsets(cctx, topic)
	if err != nil {
		p.log.Warn("drain: cannot read the usage topic's end; stopping without catching up", "err", err)
		return
	}
	start := time.Now()
	for {
		commits, err := adm.FetchOffsets(cctx, p.cfg.Group)
		if err == nil {
			behind := 0
			for _, part := range owned {
				end, ok := ends.Lookup(topic, part)
				if !ok || end.Offset <= 0 {
					continue
				}
				if c, ok := commits.Lookup(topic, part); !ok || c.At < end.Offset {
					behind++
				}
			}
			if behind == 0 {
				p.log.Info("drain: usage partitions processed", "partitions", len(owned), "took", time.Since(start).String())
				return
			}
		}
		select {
		case <-cctx.Done():
			p.log.Warn("drain: out of time before every usage record was processed; the rest is processed after the next start", "waited", time.Since(start).String())
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Ready implements role.Checker: the process is in the consumer group with a
// working transactional session and is not rebuilding dedupe memory. That
// memory is rebuilt per partition before the partition's first record is
// processed (after the group's offset fetch, see prepareState).
func (p *Processor) Ready(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.sess == nil && p.problem != nil:
		return fmt.Errorf("restarting after: %w", p.problem)
	case p.sess == nil:
		return errors.New("not started")
	}
	if _, gen := p.sess.Client().GroupMetadata(); gen < 0 {
		return errors.New("joining consumer group")
	}
	if len(p.loading) > 0 {
		return fmt.Errorf("rebuilding dedupe state of usage partitions %v", p.loading)
	}
	return nil
}

func (p *Processor) ensureDedupeTopic(ctx context.Context) error {
	cl, err := kgo.NewClient(p.deps.Kafka.ClientOpts()...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	usage, dd := p.deps.Kafka.Topics.Usage, p.cfg.Dedupe.Topic
	tds, err := adm.ListTopics(ctx, usage, dd)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	ut, ok := tds[usage]
	if !ok || ut.Err != nil {
		return fmt.Errorf("usage topic %s does not exist", usage)
	}
	n := int32(len(ut.Partitions))
	if d, ok := tds[dd]; ok && d.Err == nil {
		if got := int32(len(d.Partitions)); got < n {
			return fmt.Errorf("processor.dedupe.topic: %s has %d partitions but %s has %d; add partitions to the dedupe topic", dd, got, usage, n)
		}
		p.checkDedupeRetention(ctx, adm, dd)
		return nil
	}
	// As many partitions as the usage topic, kept a day longer than the window.
	t := kafkax.TopicsConfig{Partitions: n, ReplicationFactor: max(p.deps.Kafka.Topics.ReplicationFactor, 1),
		Retention: p.cfg.Dedupe.Window + 24*time.Hour}
	if err := kafkax.EnsureTopics(ctx, cl, t, p.log, dd); err != nil {
		return fmt.Errorf("dedupe topic %s: %w", dd, err)
	}
	return nil
}

// checkDedupeRetention warns when an existing dedupe topic forgets records
// sooner than the window (after the window was raised, say): repeats of
// events priced before a restart would then be priced again. The topic is
// not altered (existing topics never are); the warning says what to run.
func (p *Processor) checkDedupeRetention(ctx context.Context, adm *kadm.Client, topic string) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		p.log.Warn("cannot read the dedupe topic's retention", "topic", topic, "err", err)
		return
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		return
	}
	for _, c := range rc.Configs {
		if c.Key != "retention.ms" || c.Value == nil {
			continue
		}
		ms, err := strconv.ParseInt(*c.Value, 10, 64)
		if err == nil && ms >= 0 && time.Duration(ms)*time.Millisecond < p.cfg.Dedupe.Window {
			p.log.Warn("dedupe topic retention is shorter than processor.dedupe.window: after a restart, repeats of older events are not recognised",
				"topic", topic, "retention_ms", ms, "window", p.cfg.Dedupe.Window.String(),
				"fix", fmt.Sprintf("kafka-configs --alter --entity-type topics --entity-name %s --add-config retention.ms=%d", topic, (p.cfg.Dedupe.Window+24*time.Hour).Milliseconds()))
		}
	}
}

// run keeps a transactional session going until Shutdown; a failed session
// is closed (aborting its open transaction) and a new one starts after a
// backoff, with its dedupe memory rebuilt from the dedupe topic.
func (p *Processor) run(pollCtx, hardCtx context.Context, fatal chan<- error) {
	defer close(p.done)
	b := retry.Policy{Initial: 200 * time.Millisecond, Max: 10 * time.Second}.Backoff()
	for pollCtx.Err() == nil {
		err := p.session(pollCtx, hardCtx, b)
		if pollCtx.Err() != nil {
			return
		}
		p.mu.Lock()
		p.problem = err
		p.mu.Unlock()
		p.m.sessionRestarts.Add(context.Background(), 1)
		wait := b.Next()
		p.log.Warn("processor session failed; restarting", "err", err, "backoff", wait.String())
		select {
		case <-pollCtx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// clock is the processor's time (tests move it to cross the dedupe window).
func (p *Processor) clock() time.Time {
	p.mu.Lock()
	now := p.now
	p.mu.Unlock()
	return now()
}

func (p *Processor) onAssigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, part := range m[p.deps.Kafka.Topics.Usage] {
		p.epochs[part]++
		p.owned[part] = true
	}
}

func (p *Processor) onRevoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, part := range m[p.deps.Kafka.Topics.Usage] {
		p.epochs[part]++
		delete(p.owned, part)
	}
}

func (p *Processor) sessionOpts() []kgo.Opt {
	t := p.deps.Kafka.Topics
	opts := append(p.deps.Kafka.ClientOpts(),
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(t.Usage),
		// A group without committed offsets starts where the dedupe log
		// still remembers what a predecessor priced (Config.StartAt), so a
		// renamed group does not count old events twice.
		kgo.ConsumeStartOffset(p.cfg.startOffset(p.clock())),
		// Offsets lost under a running group (retention): resume at the log
		// start, every record there is one this group never read.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.TransactionalID(p.cfg.TransactionalID),
		kgo.TransactionTimeout(p.cfg.TransactionTimeout),
		kgo.ProducerBatchCompression(compressionCodecs[p.cfg.Compression]),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.RecordPartitioner(partitioner{manual: p.cfg.Dedupe.Topic, def: kgo.StickyKeyPartitioner(nil)}),
		kgo.OnPartitionsAssigned(p.onAssigned),
		kgo.OnPartitionsRevoked(p.onRevoked),
		kgo.OnPartitionsLost(p.onRevoked),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		kgo.WithLogger(kgoLogger{p.log}),
	)
	if p.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(p.cfg.InstanceID))
	}
	if len(p.hooks) > 0 {
		opts = append(opts, kgo.WithHooks(p.hooks...))
	}
	return opts
}

// session runs one transactional session until it fails (error) or polling
// stops (nil).
func (p *Processor) session(pollCtx, hardCtx context.Context, b *retry.Backoff) (err error) {
	sess, err := kgo.NewGroupTransactSession(p.sessionOpts()...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	p.mu.Lock()
	p.sess = sess
	p.mu.Unlock()
	inTxn := false
	defer func() {
		if inTxn {
			// Abort explicitly so read-committed consumers are not held
			// back until the transaction times out.
			actx, cancel := context.WithTimeout(context.WithoutCancel(hardCtx), 10*time.Second)
			if _, aerr := sess.End(actx, kgo.TryAbort); aerr != nil {
				p.log.Warn("abort on session close", "err", aerr)
			}
			cancel()
		}
		p.mu.Lock()
		p.sess = nil
		p.mu.Unlock()
		sess.Close()
	}()

	seen := newSeenSet()
	tr := &transformer{tenants: p.deps.Tenants, prices: p.prices, attr: p.attr, limits: p.deps.Limits.OrDefault()}
	t := p.deps.Kafka.Topics
	var tally tally
	for {
		fetches := sess.PollRecords(pollCtx, p.cfg.MaxBatch)
		if fetches.IsClientClosed() || pollCtx.Err() != nil {
			return nil
		}
		fetches.EachError(func(topic string, part int32, ferr error) {
			if !errors.Is(ferr, context.Canceled) {
				p.log.Warn("fetch error", "topic", topic, "partition", part, "err", ferr)
			}
		})
		if fetches.NumRecords() == 0 {
			continue
		}
		now := p.clock()
		if err := p.prepareState(hardCtx, seen, fetches, now); err != nil {
			return err
		}

		// Begin → produce priced + dedupe or DLQ records → flush → commit
		// offsets in the transaction → EndTxn. What breaks if a step fails:
		//   - a produce fails: we abort; nothing of the batch is visible and
		//     the session rewinds to the committed offsets, so the batch is
		//     processed again (no loss, no duplicate).
		//   - TxnOffsetCommit fails (rebalance, coordinator moved): End
		//     aborts; same as above, and the partition's next owner reads
		//     from the last committed offsets with the dedupe log matching.
		//   - EndTxn fails or the process dies before it: the broker aborts
		//     the transaction (at once when this transactional id restarts,
		//     else after transaction_timeout); the next owner's offset fetch
		//     waits for that (RequireStableFetchOffsets), then re-reads.
		//   - EndTxn commit succeeded but we die before learning it: the
		//     offsets were committed with the output, so nothing is re-read.
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		inTxn = true
		tally.reset()
		produceErr := p.produceBatch(hardCtx, sess, tr, seen, fetches, now, t, &tally)
		if produceErr == nil {
			if ferr := sess.Client().Flush(hardCtx); ferr != nil {
				produceErr = ferr
			} else {
				produceErr = tally.produceErr()
			}
		}
		committed, err := sess.End(hardCtx, kgo.TransactionEndTry(produceErr == nil))
		inTxn = false
		if err != nil {
			seen.abort()
			p.m.transactions(false)
			return fmt.Errorf("end transaction: %w", err)
		}
		if !committed {
			seen.abort()
			p.m.transactions(false)
			if produceErr != nil {
				wait := b.Next()
				p.log.Warn("transaction aborted; batch will be processed again", "err", produceErr, "backoff", wait.String())
				select {
				case <-pollCtx.Done(): // shutting down: the next owner re-reads the batch
					return nil
				case <-time.After(wait):
				}
			} else {
				p.log.Info("transaction aborted after a rebalance; batch will be processed again by the partition's owner")
			}
			continue
		}
		seen.commit(p.clock().UnixMilli())
		p.m.transactions(true)
		p.m.record(&tally)
		if tally.fxStale > 0 && tally.fxStaleDate != p.fxWarned {
			// Once per stale rate date: the rates file needs updating.
			p.fxWarned = tally.fxStaleDate
			p.log.Warn("events priced with a stale FX rate (older than pricing.fx_max_age): update the rates file; they are flagged fx_stale",
				"fx_date", tally.fxStaleDate, "events", tally.fxStale)
		}
		b.Reset()
		p.mu.Lock()
		p.problem = nil
		p.mu.Unlock()
	}
}

// prepareState drops the dedupe memory of partitions revoked or reassigned
// since it was loaded and loads it for partitions in fetches that have none.
// Loading happens after the poll returned records of the partition, hence
// after the group's offset fetch for it completed: with
// RequireStableFetchOffsets that fetch waits for any transaction that
// committed offsets for the partition, so the dedupe partition read below
// already holds everything that transaction wrote.
func (p *Processor) prepareState(ctx context.Context, seen *seenSet, fetches kgo.Fetches, now time.Time) error {
	p.mu.Lock()
	for part, ps := range seen.parts {
		if !p.owned[part] || p.epochs[part] != ps.epoch {
			delete(seen.parts, part)
		}
	}
	need := map[int32]uint64{}
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) == 0 {
			return
		}
		if _, ok := seen.parts[fp.Partition]; !ok {
			need[fp.Partition] = p.epochs[fp.Partition]
		}
	})
	p.mu.Unlock()
	cutoff := now.Add(-p.cfg.Dedupe.Window).UnixMilli()
	if len(need) > 0 {
		start := time.Now()
		p.mu.Lock()
		for part := range need {
			p.loading = append(p.loading, part)
		}
		slices.Sort(p.loading)
		p.mu.Unlock()
		loaded, err := loadSeen(ctx, p.deps.Kafka.ClientOpts(), p.cfg.Dedupe.Topic, need, cutoff)
		p.mu.Lock()
		p.loading = p.loading[:0]
		p.mu.Unlock()
		if err != nil {
			return fmt.Errorf("rebuild dedupe state: %w", err)
		}
		for part, ps := range loaded {
			seen.parts[part] = ps
			p.log.Info("dedupe state rebuilt", "partition", part, "event_ids", len(ps.ids), "took", time.Since(start).String())
		}
	}
	seen.evict(cutoff)
	return nil
}

// produceBatch transforms every record of fetches and produces the outcome
// into the open transaction. It returns an error only when the transaction
// cannot commit (ctx ended); bad input never fails a batch.
func (p *Processor) produceBatch(ctx context.Context, sess *kgo.GroupTransactSession, tr *transformer, seen *seenSet,
	fetches kgo.Fetches, now time.Time, t kafkaTopics, tally *tally) error {
	promise := tally.promise
	var err error
	fetches.EachRecord(func(rec *kgo.Record) {
		if err != nil {
			return
		}
		v := tr.transform(rec.Key, rec.Value, now, seen)
		switch v.kind {
		case verdictPriced:
			val, encErr := tr.encodePriced()
			if encErr != nil {
				v = verdict{kind: verdictRejected, reason: ReasonPricingFailed, detail: "encode priced event: " + encErr.Error()}
				break
			}
			if len(val) > maxPricedBytes {
				v = verdict{kind: verdictRejected, reason: ReasonTooLarge,
					detail: fmt.Sprintf("the priced record would be %d bytes, above the %d-byte limit (mostly attributes?)", len(val), maxPricedBytes)}
				break
			}
			pr := tr.record()
			pr.Topic, pr.Key, pr.Value = t.Priced, tr.pricedKey(), val
			sess.Produce(ctx, pr, promise)
			id := dedupeKey(tr.out.Tenant, tr.out.EventID)
			seen.stage(id, v.hash, rec.Partition)
			tr.dedupe.add(rec.Partition, id, v.hash)
			if tr.dedupe.full(rec.Partition) {
				err = tr.produceDedupe(ctx, sess, p.cfg.Dedupe.Topic, rec.Partition, promise)
			}
			tally.priced++
			if tr.out.FXStale {
				tally.fxStale++
				tally.fxStaleDate = tr.out.FXDate
			}
			return
		case verdictDuplicate:
			tally.duplicates++
			return
		}
		if v.reason == ReasonPricingFailed {
			p.log.Error("pricing failed without a reason (bug); event sent to the DLQ", "event_id", tr.out.EventID, "err", v.detail)
		}
		val, encErr := dlqRecord(rec, v, &tr.out.UsageEvent, now)
		if encErr != nil {
			err = fmt.Errorf("encode DLQ record: %w", encErr)
			return
		}
		sess.Produce(ctx, &kgo.Record{Topic: t.DLQ, Key: rec.Key, Value: val}, promise)
		tally.reject(v.reason, tr.out.Provider, tr.out.Model)
	})
	// One dedupe record per usage partition for the transaction's events
	// (before the transaction ends, so the log and the priced output commit
	// or abort together).
	for _, part := range tr.dedupe.partitions() {
		if err != nil {
			break
		}
		err = tr.produceDedupe(ctx, sess, p.cfg.Dedupe.Topic, part, promise)
	}
	tr.dedupe.reset()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// partitioner places dedupe records on the partition set in the record (the
// usage partition they belong to) and everything else by key, as Kafka's
// default partitioner does (murmur2), so keyed records of one workflow share
// a partition whichever client produced them.
type partitioner struct {
	manual string
	def    kgo.Partitioner
}

func (pp partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == pp.manual {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return pp.def.ForTopic(topic)
}

// kgoLogger forwards franz-go's warnings and errors to slog.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelWarn
	if level == kgo.LogLevelError {
		lv = slog.LevelError
	}
	k.l.Log(context.Background(), lv, "kafka: "+msg, keyvals...)
}
