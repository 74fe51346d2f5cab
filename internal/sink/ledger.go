package sink

import (
	"context"
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/retry"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The ledger (table sink_ledger, one current entry per topic-partition,
// ReplacingMergeTree by version) says which offset range of each partition
// the last block covered and whether that block is stored:
//
//   - done, last L: everything up to L is stored; resume at L+1.
//   - pending, block B: B (whose ranges, over possibly several partitions,
//     the entry lists) may be stored partly or not at all; before
//     consuming, re-read B's ranges from Kafka and write B again with the
//     same rows and token (writeBlock), then resume at L+1.
//   - no entry: nothing stored through the ledger; resume after what the
//     old sink_offsets table holds (databases written before the ledger),
//     else at the log start.
//
// It also records the Kafka topic id, so a partition whose log is younger
// than what ClickHouse holds (a new data dir or a recreated topic: topic id
// changed, or log start/end no longer around the resume offset) is stopped
// with an error and an operator command instead of being skipped silently.

// offsetRange is one partition's offsets [first, last] in a block.
type offsetRange struct {
	tp          topicPartition
	first, last int64
	gen         uint32 // the partition's ledger generation (reset-offsets bumps it)
}

// ledgerEntry is one partition's ledger row.
type ledgerEntry struct {
	Topic       string
	Partition   int32
	Generation  uint32
	First, Last int64
	Done        bool
	Block       string
	Ranges      []offsetRange // every partition of the block
	TopicID     string
	Group       string
}

// version orders a partition's entries: a later generation wins, then a
// later range, then done over pending. So a stale done of an older block
// (a replay racing the partition's new owner) never hides a newer entry.
func (e ledgerEntry) version() uint64 {
	v := uint64(e.Generation)<<48 | uint64(e.Last+1)<<1
	if e.Done {
		v |= 1
	}
	return v
}

// ledgerWrite writes the block's pending or done entries (one insert).
func (s *Sink) ledgerWrite(ctx context.Context, b *block, done bool) error {
	entries := make([]ledgerEntry, len(b.ranges))
	for i, r := range b.ranges {
		entries[i] = ledgerEntry{Topic: r.tp.topic, Partition: r.tp.partition, Generation: r.gen, First: r.first, Last: r.last,
			Done: done, Block: b.id, Ranges: b.ranges, TopicID: s.topicID(r.tp.topic), Group: s.group}
	}
	qctx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
	defer cancel()
	return s.store.WriteLedger(qctx, entries)
}

func (s *Sink) topicID(topic string) string {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.topicIDs[topic]
}

// retry runs fn until it succeeds or ctx ends, with backoff; failures show
// in Ready meanwhile.
func (s *Sink) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	b := s.cfg.retryPolicy().Backoff()
	for {
		qctx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
		err := fn(qctx)
		cancel()
		if err == nil {
			s.setResumeErr(nil)
			return nil
		}
		var lost *logLostError
		if errors.As(err, &lost) {
			return err
		}
		s.setResumeErr(fmt.Errorf("%s: %w", what, err))
		add(s.m.errors, 1)
		wait := b.Next()
		s.log().Warn("cannot "+what+"; retrying", "err", err, "retry_in", wait.String())
		if !retry.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// resume is the consumer's AdjustFetchOffsetsFn: it runs after the group
// assigned partitions, before any is fetched. It replaces the committed
// offsets (informational only) with what the ledger says, replays pending
// blocks, stops partitions whose log does not match, and rebuilds the
// outcome dedupe sets. While ClickHouse or Kafka do not answer it retries,
// so those partitions are not consumed until it succeeds; it gives up only
// when the group session ends (ctx), and the next session asks again.
func (s *Sink) resume(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	pending := map[string]ledgerEntry{}
	next := map[topicPartition]int64{}
	for topic, parts := range offsets {
		var led map[int32]ledgerEntry
		var legacy map[int32]int64
		var lg logState
		err := s.retry(ctx, "read the sink ledger", func(ctx context.Context) (err error) {
			if led, err = s.store.Ledger(ctx, topic); err != nil {
				return err
			}
			legacy, err = s.store.LegacyHeldOffsets(ctx, topic)
			return err
		})
		if err == nil {
			err = s.retry(ctx, "read kafka log offsets", func(ctx context.Context) (err error) {
				lg, err = s.logState(ctx, topic)
				return err
			})
		}
		if err != nil {
			return nil, err
		}
		s.smu.Lock()
		s.topicIDs[topic] = lg.id
		s.smu.Unlock()
		for p := range parts {
			tp := topicPartition{topic, p}
			s.mu.Lock()
			s.dropLocked(tp) // anything buffered from an earlier assignment is stale
			s.mu.Unlock()
			held, ok := int64(-1), false
			var gen uint32
			if e, found := led[p]; found {
				held, ok, gen = e.Last, true, e.Generation
				if !e.Done {
					pending[e.Block] = e
				}
				if e.TopicID != "" && lg.id != "" && e.TopicID != lg.id {
					s.stopPartition(tp, held, fmt.Sprintf("topic %s now has id %s but ClickHouse holds offsets up to %d of it under topic id %s: the Kafka log was recreated (new data dir or topic)", topic, lg.id, held, e.TopicID))
				}
			} else if o, found := legacy[p]; found {
				held, ok = o, true
			}
			s.mu.Lock()
			s.gens[tp] = gen
			s.mu.Unlock()
			if !ok {
				parts[p] = kgo.NewOffset().AtStart()
				next[tp] = 0
				continue
			}
			parts[p] = kgo.NewOffset().At(held + 1)
			next[tp] = held + 1
			if start, found := lg.start[p]; found && start > held+1 {
				s.stopPartition(tp, held, fmt.Sprintf("the Kafka log of %s starts at offset %d but ClickHouse holds offsets up to %d only: records %d..%d were never stored (retention deleted them, or the log was reset)", tp, start, held, held+1, start-1))
			}
			if end, found := lg.end[p]; found && end < held+1 {
				s.stopPartition(tp, held, fmt.Sprintf("the Kafka log of %s ends at offset %d but ClickHouse holds offsets up to %d: the Kafka log is younger than the database (new data dir, or the topic was recreated)", tp, end, held))
			}
		}
	}
	ids := make([]string, 0, len(pending))
	for id := range pending {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		e := pending[id]
		if s.anyStopped(e.Ranges) {
			continue
		}
		err := s.retry(ctx, "replay pending block "+id, func(ctx context.Context) error { return s.replay(ctx, e) })
		var lost *logLostError
		if errors.As(err, &lost) {
			for _, r := range e.Ranges {
				s.stopPartition(r.tp, r.first-1, "pending block "+id+" cannot be read again from Kafka: "+lost.Error())
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		add(s.m.replayed, 1)
		s.log().Info("replayed pending block", "block", id, "ranges", fmt.Sprint(e.Ranges))
	}
	if parts, ok := offsets[s.deps.Kafka.Topics.Outcomes]; ok {
		for p := range parts {
			tp := topicPartition{s.deps.Kafka.Topics.Outcomes, p}
			set, err := s.outcomeSet(ctx, tp, next[tp])
			if err != nil {
				return nil, err
			}
			s.mu.Lock()
			s.parts[tp] = &partBuf{tp: tp, stored: set, pruneAt: 2 * len(set)}
			s.mu.Unlock()
		}
	}
	s.log().Info("resuming from the clickhouse ledger", "partitions", len(next), "replayed", len(ids))
	return offsets, nil
}

func (r offsetRange) String() string { return fmt.Sprintf("%s:%d-%d", r.tp, r.first, r.last) }

// replay writes a pending block again: the same ranges read again from
// Kafka, decoded the same way, with the same id.
func (s *Sink) replay(ctx context.Context, e ledgerEntry) error {
	recs, err := s.readRanges(ctx, e.Ranges)
	if err != nil {
		return err
	}
	now := time.Now()
	var rows []pendingRow
	for _, r := range e.Ranges {
		pb := &partBuf{tp: r.tp}
		if r.tp.topic == s.deps.Kafka.Topics.Outcomes {
			if pb.stored, err = s.store.OutcomeKeys(ctx, r.tp.topic, r.tp.partition, r.first, s.cfg.OutcomeDedupeWindow); err != nil {
				return err
			}
		}
		for _, rec := range recs[r.tp] {
			if row, keep := s.decode(pb, rec, now, false); keep {
				rows = append(rows, row)
			}
		}
	}
	b := &block{id: e.Block, ranges: e.Ranges, rows: rows, inserted: map[string]bool{}, pendingWritten: true}
	return s.writeBlock(ctx, b)
}

// logLostError: records a block or the ledger needs are no longer in Kafka.
type logLostError struct{ msg string }

func (e *logLostError) Error() string { return e.msg }

// readRanges reads the records of ranges from Kafka (read-committed, the
// same records the block was cut from), outside the consumer group.
func (s *Sink) readRanges(ctx context.Context, ranges []offsetRange) (map[topicPartition][]*kgo.Record, error) {
	parts := map[string]map[int32]kgo.Offset{}
	left := map[topicPartition]int64{}
	for _, r := range ranges {
		if parts[r.tp.topic] == nil {
			parts[r.tp.topic] = map[int32]kgo.Offset{}
		}
		parts[r.tp.topic][r.tp.partition] = kgo.NewOffset().At(r.first)
		left[r.tp] = r.last
	}
	cl, err := kgo.NewClient(append(s.deps.Kafka.ClientOpts(),
		kgo.ConsumePartitions(parts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	out := map[topicPartition][]*kgo.Record{}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read block ranges again: %w (still missing %d partitions)", ctx.Err(), len(left))
		}
		var lost error
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, kerr.OffsetOutOfRange) {
				lost = &logLostError{fmt.Sprintf("%s/%d: %v", t, p, err)}
			}
		})
		if lost != nil {
			return nil, lost
		}
		fs.EachRecord(func(r *kgo.Record) {
			tp := topicPartition{r.Topic, r.Partition}
			last, ok := left[tp]
			if !ok || r.Offset > last {
				return
			}
			out[tp] = append(out[tp], r)
			if r.Offset == last {
				delete(left, tp)
			}
		})
	}
	return out, nil
}

// logState is what Kafka says about a topic's partitions now.
type logState struct {
	id         string
	start, end map[int32]int64
}

func (s *Sink) logState(ctx context.Context, topic string) (logState, error) {
	st := logState{start: map[int32]int64{}, end: map[int32]int64{}}
	md, err := s.admin.Metadata(ctx, topic)
	if err != nil {
		return st, fmt.Errorf("kafka metadata: %w", err)
	}
	if td, ok := md.Topics[topic]; ok && td.Err == nil && td.ID != [16]byte{} {
		st.id = td.ID.String()
	}
	starts, err := s.admin.ListStartOffsets(ctx, topic)
	if err != nil {
		return st, fmt.Errorf("kafka log start offsets: %w", err)
	}
	ends, err := s.admin.ListEndOffsets(ctx, topic)
	if err != nil {
		return st, fmt.Errorf("kafka log end offsets: %w", err)
	}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			st.start[o.Partition] = o.Offset
		}
	})
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			st.end[o.Partition] = o.Offset
		}
	})
	return st, nil
}

// stopPartition stops consuming tp: the log no longer matches what
// ClickHouse holds, and going on would skip or mislabel records. Ready
// reports it until an operator resolves it (tokenmeter sink reset-offsets)
// and the sink restarts.
func (s *Sink) stopPartition(tp topicPartition, held int64, why string) {
	cmd := fmt.Sprintf("tokenmeter sink reset-offsets CONFIG --topic %s --partition %d --to earliest (or --to OFFSET); then restart the sink", tp.topic, tp.partition)
	msg := fmt.Sprintf("partition %s stopped: %s; to accept the current log run: %s", tp, why, cmd)
	s.smu.Lock()
	_, already := s.stopped[tp]
	s.stopped[tp] = msg
	s.smu.Unlock()
	if !already {
		add(s.m.stopped, 1)
		s.log().Error("sink partition stopped: kafka log does not match clickhouse", "topic", tp.topic, "partition", tp.partition, "held_offset", held, "reason", why, "resolve", cmd)
	}
}

func (s *Sink) anyStopped(ranges []offsetRange) bool {
	s.smu.Lock()
	defer s.smu.Unlock()
	for _, r := range ranges {
		if _, ok := s.stopped[r.tp]; ok {
			return true
		}
	}
	return false
}
