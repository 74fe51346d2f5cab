package sink

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Outcome dedupe: re-sent outcomes (a client retrying POST /v1/outcomes
// after a partial acknowledgement) are skipped by (tenant, outcome_id)
// within each outcomes partition. partBuf.stored holds the pairs ClickHouse
// holds for the partition below the offset being read (rebuilt from the
// outcomes table on assignment, extended after each stored block);
// partBuf.pending those of the buffered rows. The first copy wins.

// outcomeKey identifies an outcome for de-duplication.
type outcomeKey struct{ tenant, id string }

// outcomeCols are the positions of the dedupe key's columns in
// outcomesTable, looked up by name so the decoder may order columns as it
// likes.
var outcomeCols = struct{ id, time, tenant int }{
	id:     columnIndex(outcomesTable, "outcome_id"),
	time:   columnIndex(outcomesTable, "event_time"),
	tenant: columnIndex(outcomesTable, "tenant"),
}

func columnIndex(t *table, name string) int {
	for i, c := range t.columns {
		if c == name {
			return i
		}
	}
	// A programming error caught by TestOutcomeKeyColumns.
	return -1
}

// outcomeKeyOf reads the dedupe key and event_time from an outcomes row.
func outcomeKeyOf(vals []any) (outcomeKey, time.Time) {
	at := func(i int) any {
		if i < 0 || i >= len(vals) {
			return nil
		}
		return vals[i]
	}
	id, _ := at(outcomeCols.id).(string)
	ts, _ := at(outcomeCols.time).(time.Time)
	tenant, _ := at(outcomeCols.tenant).(string)
	return outcomeKey{tenant: tenant, id: id}, ts
}

// isDuplicate reports whether an outcome with key k is already stored or
// buffered for this partition.
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

// outcomeSet reads one outcomes partition's dedupe set below offset
// `below`, retrying until it succeeds or ctx ends.
func (s *Sink) outcomeSet(ctx context.Context, tp topicPartition, below int64) (map[outcomeKey]time.Time, error) {
	var set map[outcomeKey]time.Time
	err := s.retry(ctx, "read stored outcome ids", func(ctx context.Context) error {
		var err error
		set, err = s.store.OutcomeKeys(ctx, tp.topic, tp.partition, below, s.cfg.OutcomeDedupeWindow)
		return err
	})
	return set, err
}

// skipDuplicateOutcome is add's outcome check: it reports whether the row
// is a duplicate to skip (marking the offset for the informational commit
// when nothing before it is buffered), and otherwise records it as pending.
func (s *Sink) skipDuplicateOutcome(pb *partBuf, row *pendingRow, r *kgo.Record, live bool) bool {
	okey, otime := outcomeKeyOf(row.values)
	if pb.isDuplicate(okey) {
		add(s.m.dupOut, 1)
		if live && len(pb.rows) == 0 && s.inflightHas(pb.tp) == false && s.cl != nil {
			s.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{r.Topic: {r.Partition: {Epoch: -1, Offset: r.Offset + 1}}})
		}
		return true
	}
	if pb.pending == nil {
		pb.pending = map[outcomeKey]struct{}{}
	}
	pb.pending[okey] = struct{}{}
	row.okey, row.otime = okey, otime
	return false
}
