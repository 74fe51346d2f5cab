package sink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// block is one flush: the rows of one or more partitions, each a
// contiguous offset range, written with one insert per table.
type block struct {
	id     string        // names the block in the ledger; the base of every dedupe token
	ranges []offsetRange // one per partition, in the order cut took them
	rows   []pendingRow  // in range order, each range in offset order
	// pendingWritten: the ledger holds this block's pending entries, so
	// from now on it must be written exactly as it is (same rows, same
	// token) until it is done, by this member or by a replay.
	pendingWritten bool
	inserted       map[string]bool // tables whose insert returned success
}

func newBlock(ranges []offsetRange, rows []pendingRow) *block {
	return &block{id: blockID(ranges), ranges: ranges, rows: rows, inserted: map[string]bool{}}
}

// blockID is derived from the ranges only (and their partitions'
// generation, so a reset log's offsets get new ids), never from the rows:
// the same ranges always give the same id, on any member, after any restart.
func blockID(ranges []offsetRange) string {
	h := sha256.New()
	for _, r := range ranges {
		h.Write([]byte(r.tp.topic))
		h.Write([]byte{0})
		h.Write(strconv.AppendInt(nil, int64(r.tp.partition), 10))
		h.Write([]byte{':'})
		h.Write(strconv.AppendUint(nil, uint64(r.gen), 10))
		h.Write([]byte{':'})
		h.Write(strconv.AppendInt(nil, r.first, 10))
		h.Write([]byte{'-'})
		h.Write(strconv.AppendInt(nil, r.last, 10))
		h.Write([]byte{';'})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (b *block) covers(tp topicPartition) bool {
	for _, r := range b.ranges {
		if r.tp == tp {
			return true
		}
	}
	return false
}

// token is the insert_deduplication_token of the block's insert into table.
func (b *block) token(table string) string { return b.id + "/" + table }

// insertOrder: the dlq table goes last, because a row another table cannot
// hold becomes a dlq row while that table is inserted.
var insertOrder = []*table{pricedTable, outcomesTable, alertsTable, dlqTable}

// batch builds table t's part of the block, in the block's row order, and
// the block index of each row.
func (b *block) batch(t *table) (TableBatch, []int) {
	tb := TableBatch{Table: t.name, Columns: append(append([]string{}, t.columns...), kafkaColumns...)}
	var idx []int
	for i := range b.rows {
		if b.rows[i].table == t {
			tb.Rows = append(tb.Rows, b.rows[i].values)
			idx = append(idx, i)
		}
	}
	return tb, idx
}

// writeBlock stores a block exactly once. It is what both a flush and a
// replay (ledger.go) run, and it may be called again after any failure.
//
// Order of steps, and what a failure (or kill -9) at each one leaves behind:
//
//  1. Write a pending entry per partition to sink_ledger (one insert, so
//     all or none): "block <id> covers these ranges of these partitions".
//     Failure: maybe written, maybe not. Nothing else was; the block stays
//     in memory and this step is repeated. Until it has succeeded no row
//     of the block is sent, so a partition that moves to another member
//     meanwhile is read again by it from the last done range and nothing
//     is stored twice (dropPartitions drops the block then). A pending
//     entry that landed while we saw an error makes the next owner replay
//     the block: harmless, nothing of it was inserted.
//  2. Insert each table's rows as one insert, with insert_deduplication_token
//     <id>/<table> and deduplicate_blocks_in_dependent_materialized_views,
//     into tables that keep a deduplication window. The rows are those of
//     the ranges, in offset order, so a repeat of this step (here, or by a
//     replay after a restart that re-reads the ranges from Kafka) sends the
//     same rows with the same token. Failure at any point (the server wrote
//     the table and some views but a view threw, too many parts, memory
//     limit, connection lost, kill -9): some of {table, views} hold the
//     block, others not; the repeat stores it exactly where it is missing
//     and nowhere twice, whatever order the views run in. Materialized
//     views are not relied on to run last, or in any order.
//  3. Write a done entry per partition (version above the pending one).
//     Failure: the ledger still says pending; the repeat (or replay)
//     re-runs step 2 as a no-op and writes done again.
//  4. Mark offset last+1 of each partition for the group commit, and move
//     the block's outcome keys to the stored set. The commit is
//     informational (lag): resume offsets come from the ledger.
//
// Limits: the repeat must come within the tables' deduplication window
// (non_replicated_deduplication_window / replicated_deduplication_window
// inserts into the same table, 10000 in our schema), i.e. before 10000 other
// inserts into priced_usage; a member whose group session lapsed mid-block
// while another member already re-read the partition from the ledger can
// store that one block twice (no fencing across members; see
// docs/clickhouse.md).
func (s *Sink) writeBlock(ctx context.Context, b *block) error {
	if !b.pendingWritten {
		if err := s.ledgerWrite(ctx, b, false); err != nil {
			return fmt.Errorf("ledger pending: %w", err)
		}
		b.pendingWritten = true
	}
	// Tables other than dlq are independent: up to InsertConcurrency at
	// once. dlq follows, with any rows the others could not hold.
	if err := s.insertTables(ctx, b, insertOrder[:3]); err != nil {
		return err
	}
	if err := s.insertTables(ctx, b, insertOrder[3:]); err != nil {
		return err
	}
	if err := s.ledgerWrite(ctx, b, true); err != nil {
		return fmt.Errorf("ledger done: %w", err)
	}
	return nil
}

func (s *Sink) insertTables(ctx context.Context, b *block, tables []*table) error {
	var mu sync.Mutex // guards b.rows changes (dlq replacements) and b.inserted
	errs := make([]error, len(tables))
	sem := make(chan struct{}, s.cfg.InsertConcurrency)
	var wg sync.WaitGroup
	for i, t := range tables {
		mu.Lock()
		done := b.inserted[t.name]
		mu.Unlock()
		if done {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, t *table) {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = s.insertTable(ctx, b, t, &mu)
		}(i, t)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// insertTable is step 2 for one table. A row the driver refuses before
// anything is sent (a value its column cannot hold) is replaced by its dlq
// row and the insert tried again: deterministic, so a replay does the same.
func (s *Sink) insertTable(ctx context.Context, b *block, t *table, mu *sync.Mutex) error {
	for {
		mu.Lock()
		tb, idx := b.batch(t)
		mu.Unlock()
		if tb.NumRows() == 0 {
			mu.Lock()
			b.inserted[t.name] = true
			mu.Unlock()
			return nil
		}
		ictx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
		start := time.Now()
		err := s.store.Insert(ictx, tb, b.token(t.name))
		cancel()
		var rowErr *RowError
		if errors.As(err, &rowErr) && rowErr.Row < len(idx) && t != dlqTable {
			mu.Lock()
			bad := &b.rows[idx[rowErr.Row]]
			vals, _ := sinkDLQ(bad.record, fmt.Errorf("clickhouse cannot store it: %w", rowErr), time.Now())
			bad.table = dlqTable
			bad.unstored, bad.okey = bad.okey, outcomeKey{}
			bad.values = append(vals, bad.record.Topic, bad.record.Partition, bad.record.Offset)
			mu.Unlock()
			s.log().Warn("row clickhouse cannot hold stored in dlq table", "topic", bad.record.Topic, "partition", bad.record.Partition, "offset", bad.offset, "err", rowErr.Err)
			s.countDLQ("unstorable")
			continue
		}
		if err != nil {
			return fmt.Errorf("block %s: %w", b.id, err)
		}
		s.recordInsert(t.name, tb.NumRows(), time.Since(start).Seconds())
		mu.Lock()
		b.inserted[t.name] = true
		mu.Unlock()
		return nil
	}
}

// stored is step 4, after writeBlock succeeded for a block this member cut.
// Callers hold s.mu.
func (s *Sink) stored(b *block) {
	marks := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range b.ranges {
		if pb := s.parts[r.tp]; pb != nil {
			var rows []pendingRow
			for _, row := range b.rows {
				if row.okey.id != "" && row.record.Topic == r.tp.topic && row.record.Partition == r.tp.partition {
					rows = append(rows, row)
				}
			}
			pb.markStored(rows)
			pb.pruneStored(time.Now().Add(-s.cfg.OutcomeDedupeWindow))
		}
		if marks[r.tp.topic] == nil {
			marks[r.tp.topic] = map[int32]kgo.EpochOffset{}
		}
		marks[r.tp.topic][r.tp.partition] = kgo.EpochOffset{Epoch: -1, Offset: r.last + 1}
	}
	// A row replaced by a dlq row was not stored as an outcome: a later
	// copy may be.
	for _, row := range b.rows {
		if row.unstored.id != "" {
			if pb := s.parts[topicPartition{row.record.Topic, row.record.Partition}]; pb != nil {
				delete(pb.pending, row.unstored)
			}
		}
	}
	if s.cl != nil {
		s.cl.MarkCommitOffsets(marks)
	}
}
