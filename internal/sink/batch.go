package sink

import (
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/ingest"
	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// Batching: records are decoded into one buffer per partition as they are
// polled; when the buffers together are full or the oldest row is old
// enough, they are cut into ONE block (every due partition's rows, so one
// insert per table per flush, not one per partition) that insert.go writes.

type topicPartition struct {
	topic     string
	partition int32
}

func (tp topicPartition) String() string { return fmt.Sprintf("%s/%d", tp.topic, tp.partition) }

// partBuf holds one partition's decoded records not yet cut into a block,
// in offset order, and its outcome dedupe state (outcomes.go).
type partBuf struct {
	tp    topicPartition
	rows  []pendingRow
	bytes int
	since time.Time // when the oldest row was buffered

	stored  map[outcomeKey]time.Time
	pending map[outcomeKey]struct{}
	pruneAt int
}

type pendingRow struct {
	table  *table
	values []any // including the kafka_* columns
	offset int64
	size   int
	record *kgo.Record // for a dlq row if ClickHouse cannot hold the row
	// okey is set on outcomes rows (okey.id != ""): the dedupe key.
	okey  outcomeKey
	otime time.Time
	// unstored: the dedupe key of an outcome row replaced by a dlq row.
	unstored outcomeKey
}

// decode turns one record into its row. A record that cannot be decoded
// becomes a dlq row in its place (never dropped, never retried). It returns
// false for a duplicate outcome, which is skipped. The same records decode
// to the same rows on a replay (ledger.go), except rejected_at of a dlq row.
func (s *Sink) decode(pb *partBuf, r *kgo.Record, now time.Time, live bool) (pendingRow, bool) {
	t := s.tables[r.Topic]
	var row pendingRow
	if t == nil {
		vals, _ := sinkDLQ(r, fmt.Errorf("no table for topic %s", r.Topic), now)
		row = pendingRow{table: dlqTable, values: vals}
	} else if vals, _, err := decodeBounded(t, s.zoner, r.Value); err != nil {
		vals, _ := sinkDLQ(r, err, now)
		row = pendingRow{table: dlqTable, values: vals}
		if live {
			s.log().Warn("undecodable record stored in dlq table", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
			s.countDLQ("undecodable")
		}
	} else {
		row = pendingRow{table: t, values: vals}
		if t == outcomesTable && s.skipDuplicateOutcome(pb, &row, r, live) {
			return row, false
		}
	}
	row.values = append(row.values, r.Topic, r.Partition, r.Offset)
	row.offset = r.Offset
	row.record = r
	row.size = len(r.Value) + 64
	return row, true
}

// decodeBounded refuses nesting deeper than limits.max_depth before the
// JSON decoder recurses into it: outcomes.v1 takes records straight from
// apps, and 8M `[` overflow the decoder's goroutine stack, which kills the
// whole process (issue 17 item 1). tokenmeter's own records nest 3 levels.
func decodeBounded(t *table, z *zoner, value []byte) ([]any, int64, error) {
	if err := ingest.CheckDepth(value, limits.DefaultMaxDepth); err != nil {
		return nil, 0, err
	}
	return t.decode(z, value)
}

// add buffers one polled record. Callers hold s.mu.
func (s *Sink) add(r *kgo.Record, now time.Time) {
	tp := topicPartition{r.Topic, r.Partition}
	if s.isStopped(tp) {
		return // fetched before the pause took effect; never marked, read again after a reset
	}
	pb := s.parts[tp]
	if pb == nil {
		pb = &partBuf{tp: tp}
		s.parts[tp] = pb
	}
	row, keep := s.decode(pb, r, now, true)
	if !keep {
		return
	}
	if len(pb.rows) == 0 {
		pb.since = now
	}
	pb.rows = append(pb.rows, row)
	pb.bytes += row.size
	s.bytes += row.size
	s.buffered++
}

// due reports whether the buffers should be cut into a block now. Callers
// hold s.mu.
func (s *Sink) due(now time.Time) bool {
	if s.buffered == 0 {
		return false
	}
	if s.buffered >= s.cfg.BatchRows || s.bytes >= s.cfg.BatchBytes || s.bytes >= s.cfg.MaxBufferedBytes {
		return true
	}
	for _, pb := range s.parts {
		if len(pb.rows) > 0 && !now.Before(pb.since.Add(s.cfg.BatchAge)) {
			return true
		}
	}
	return false
}

// cut moves up to BatchRows buffered rows, whole partitions in topic and
// partition order (the last one possibly cut short), into a new block. The
// order starts one partition further at each cut, so under sustained load
// every partition gets into blocks. Callers hold s.mu.
func (s *Sink) cut(now time.Time) *block {
	keys := make([]topicPartition, 0, len(s.parts))
	for tp, pb := range s.parts {
		if len(pb.rows) > 0 {
			keys = append(keys, tp)
		}
	}
	sortPartitions(keys)
	if len(keys) > 1 {
		k := s.cuts % len(keys)
		keys = append(keys[k:], keys[:k]...)
	}
	s.cuts++
	var rows []pendingRow
	var ranges []offsetRange
	for _, tp := range keys {
		room := s.cfg.BatchRows - len(rows)
		if room <= 0 {
			break
		}
		pb := s.parts[tp]
		n := min(room, len(pb.rows))
		take := pb.rows[:n]
		size := 0
		for i := range take {
			size += take[i].size
		}
		rows = append(rows, take...)
		ranges = append(ranges, offsetRange{tp: tp, first: take[0].offset, last: take[n-1].offset, gen: s.gens[tp]})
		pb.rows = pb.rows[n:]
		if len(pb.rows) == 0 {
			pb.rows = nil
		} else {
			pb.since = now
		}
		pb.bytes -= size
		s.bytes -= size
		s.buffered -= n
	}
	return newBlock(ranges, rows)
}

func sortPartitions(keys []topicPartition) {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].partition < keys[j].partition
	})
}

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

// applyPause pauses fetching while ClickHouse fails, a block is still being
// retried, or the buffers are full, and resumes it otherwise; stopped
// partitions stay paused. Callers hold s.mu.
func (s *Sink) applyPause() {
	want := s.lastErr != nil || s.bytes >= s.cfg.MaxBufferedBytes
	if want != s.paused {
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
	s.smu.Lock()
	m := map[string][]int32{}
	for tp := range s.stopped {
		m[tp.topic] = append(m[tp.topic], tp.partition)
	}
	s.smu.Unlock()
	if len(m) > 0 {
		s.cl.PauseFetchPartitions(m)
	}
}

// dropPartitions forgets the buffers of partitions this member no longer
// owns: their next owner re-reads them from what the ledger says.
func (s *Sink) dropPartitions(lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, ps := range lost {
		for _, p := range ps {
			s.dropLocked(topicPartition{topic, p})
		}
	}
	// A block whose pending entry is not known to be in the ledger must not
	// be inserted once one of its partitions has a new owner: that owner
	// reads the partition again from the ledger's last done range and builds
	// its own block of the same records. One whose pending entry is written
	// is kept: the new owner replays it with the same token, so both
	// writing it is harmless.
	// The rows of partitions still owned go back to their buffers.
	if b := s.inflight; b != nil && !b.pendingWritten {
		isLost := func(tp topicPartition) bool {
			for _, p := range lost[tp.topic] {
				if p == tp.partition {
					return true
				}
			}
			return false
		}
		hit := false
		for _, r := range b.ranges {
			hit = hit || isLost(r.tp)
		}
		if !hit {
			return
		}
		s.inflight = nil
		s.lastErr = nil
		s.publishHealth()
		for i := len(b.ranges) - 1; i >= 0; i-- {
			tp := b.ranges[i].tp
			if isLost(tp) {
				continue
			}
			var back []pendingRow
			size := 0
			for _, row := range b.rows {
				if row.record.Topic == tp.topic && row.record.Partition == tp.partition {
					back = append(back, row)
					size += row.size
				}
			}
			pb := s.parts[tp]
			if pb == nil {
				pb = &partBuf{tp: tp}
				s.parts[tp] = pb
			}
			pb.rows = append(back, pb.rows...)
			pb.bytes += size
			pb.since = time.Now()
			s.bytes += size
			s.buffered += len(back)
		}
	}
}

func (s *Sink) dropLocked(tp topicPartition) {
	if pb := s.parts[tp]; pb != nil {
		s.bytes -= pb.bytes
		s.buffered -= len(pb.rows)
		delete(s.parts, tp)
	}
	s.smu.Lock()
	delete(s.stopped, tp)
	s.smu.Unlock()
}

func (s *Sink) isStopped(tp topicPartition) bool {
	s.smu.Lock()
	defer s.smu.Unlock()
	_, ok := s.stopped[tp]
	return ok
}

// inflightHas reports whether the block being written covers tp. Callers
// hold s.mu.
func (s *Sink) inflightHas(tp topicPartition) bool {
	return s.inflight != nil && s.inflight.covers(tp)
}
