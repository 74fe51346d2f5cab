package processor

import (
	"context"
	"encoding/binary"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/tokenmeter/tokenmeter/internal/contract/pricedv1"
	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Dedupe state.
//
// The processor remembers, for every usage partition it owns, the event_id
// and content hash of each event it priced within the window. The memory is
// rebuilt from the dedupe topic, which holds, per transaction and usage
// partition, one record listing every event priced from that partition in
// it (value: version byte 2 + a DedupeBatch of the priced.v1 contract,
// schemas/proto; timestamp = time priced; up to dedupeBatchMax entries a
// record), on the SAME partition number as those usage records, written in
// the same transaction as the priced records and the consumer offsets.
// Logs written before batching hold one record per event (key
// tenant/event_id, value version byte 1 + 8-byte hash); both are read. So the dedupe log, the priced output and the offsets are always
// consistent with each other: after any crash, a restarted or new owner of
// usage partition P reads dedupe partition P (read-committed) and knows
// exactly which events were priced from P.
//
// Duplicates of one event land on one usage partition because records are
// keyed tenant/workflow and a duplicate with identical content has the same
// key. A same-id event with different content may land elsewhere; it is caught
// when the owning process holds both partitions (each process checks the
// state of every partition it owns); see docs/processing.md for the limits.

const (
	dedupeValueVersion = 1 // one event per record (key tenant/event_id, 8-byte hash)
	dedupeBatchVersion = 2 // a DedupeBatch
	// dedupeBatchMax bounds a dedupe record: ~60 bytes an entry keeps it
	// far below the broker's 1 MiB default max.message.bytes.
	dedupeBatchMax = 8192
)

// seenEntry is what is remembered of one priced event.
type seenEntry struct {
	hash uint64
	at   int64 // unix ms when priced; evicted after the window
}

type seenAt struct {
	id string
	at int64
}

// partSeen is the dedupe memory of one usage partition: a map for lookups
// and a FIFO in pricing order for eviction.
type partSeen struct {
	ids   map[string]seenEntry
	order []seenAt
	head  int
	epoch uint64 // assignment epoch the state was loaded for
}

func newPartSeen(epoch uint64) *partSeen {
	return &partSeen{ids: make(map[string]seenEntry), epoch: epoch}
}

func (ps *partSeen) add(id string, hash uint64, at int64) {
	if _, ok := ps.ids[id]; ok {
		return
	}
	ps.ids[id] = seenEntry{hash: hash, at: at}
	ps.order = append(ps.order, seenAt{id: id, at: at})
}

// evict forgets events priced before cutoff (unix ms).
func (ps *partSeen) evict(cutoff int64) {
	for ps.head < len(ps.order) && ps.order[ps.head].at < cutoff {
		delete(ps.ids, ps.order[ps.head].id)
		ps.order[ps.head] = seenAt{}
		ps.head++
	}
	if ps.head > 1024 && ps.head > len(ps.order)/2 {
		ps.order = append(ps.order[:0:0], ps.order[ps.head:]...)
		ps.head = 0
	}
}

// seenSet is the dedupe memory of all partitions this process owns, plus
// what the open transaction added (pending), which becomes part of the
// memory only when the transaction commits.
type seenSet struct {
	parts   map[int32]*partSeen
	pending map[string]pendingEntry
	porder  []stagedID // pending's ids in staging order, with their entries
}

type pendingEntry struct {
	hash uint64
	part int32
}

type stagedID struct {
	id string
	pendingEntry
}

func newSeenSet() *seenSet {
	return &seenSet{parts: map[int32]*partSeen{}, pending: map[string]pendingEntry{}}
}

// lookup finds id (a dedupeKey) among priced events of every owned
// partition and the open transaction. id is bytes because map lookups with
// string(id) do not allocate.
func (s *seenSet) lookup(id []byte) (uint64, bool) {
	if e, ok := s.pending[string(id)]; ok {
		return e.hash, true
	}
	for _, ps := range s.parts {
		if e, ok := ps.ids[string(id)]; ok {
			return e.hash, true
		}
	}
	return 0, false
}

// stage adds an event priced in the open transaction. The processor stages
// only ids that lookup did not find, so each id is staged once.
func (s *seenSet) stage(id string, hash uint64, part int32) {
	e := pendingEntry{hash: hash, part: part}
	s.pending[id] = e
	s.porder = append(s.porder, stagedID{id: id, pendingEntry: e})
}

// commit makes the open transaction's events part of the memory.
func (s *seenSet) commit(at int64) {
	for _, e := range s.porder {
		if ps := s.parts[e.part]; ps != nil {
			ps.add(e.id, e.hash, at)
		}
	}
	s.abort()
}

// abort forgets the open transaction's events.
func (s *seenSet) abort() {
	clear(s.pending)
	clear(s.porder)
	s.porder = s.porder[:0]
}

func (s *seenSet) evict(cutoff int64) {
	for _, ps := range s.parts {
		ps.evict(cutoff)
	}
}

// dedupeValue encodes a one-event dedupe record value (the format before
// batching; kept for tests of reading old logs).
func dedupeValue(hash uint64) []byte {
	b := make([]byte, 9)
	b[0] = dedupeValueVersion
	binary.BigEndian.PutUint64(b[1:], hash)
	return b
}

// appendDedupeBatch appends the value of a batched dedupe record.
func appendDedupeBatch(b []byte, batch *pricedv1.DedupeBatch) ([]byte, error) {
	b = append(b, dedupeBatchVersion)
	return proto.MarshalOptions{}.MarshalAppend(b, batch)
}

// parseDedupe calls add for every event a dedupe record lists.
func parseDedupe(key, v []byte, add func(id string, hash uint64)) error {
	switch {
	case len(v) == 9 && v[0] == dedupeValueVersion:
		add(string(key), binary.BigEndian.Uint64(v[1:]))
		return nil
	case len(v) > 0 && v[0] == dedupeBatchVersion:
		var batch pricedv1.DedupeBatch
		if err := proto.Unmarshal(v[1:], &batch); err != nil {
			return fmt.Errorf("dedupe batch: %w", err)
		}
		for _, e := range batch.Entries {
			add(e.Key, e.ContentHash)
		}
		return nil
	}
	return fmt.Errorf("dedupe record value: want version %d (9 bytes) or %d, got %d bytes", dedupeValueVersion, dedupeBatchVersion, len(v))
}

// loadSeen rebuilds the dedupe memory of parts from the dedupe topic: every
// committed record with a timestamp at or after sinceMs, up to the last
// stable offset. Control records are kept so the end of a partition whose
// last batch was a transaction marker is recognised.
func loadSeen(ctx context.Context, base []kgo.Opt, topic string, parts map[int32]uint64, sinceMs int64) (map[int32]*partSeen, error) {
	out := make(map[int32]*partSeen, len(parts))
	r := kafkax.ReadRange{AfterMilli: sinceMs}
	for p, epoch := range parts {
		out[p] = newPartSeen(epoch)
		r.Partitions = append(r.Partitions, p)
	}
	_, err := kafkax.ReadToEnd(ctx, base, topic, r, func(rec *kgo.Record) error {
		// A record stamped before the window (timestamps are not monotonic
		// within a partition) is outside the dedupe memory.
		if rec.Timestamp.UnixMilli() < sinceMs {
			return nil
		}
		ps, at := out[rec.Partition], rec.Timestamp.UnixMilli()
		if err := parseDedupe(rec.Key, rec.Value, func(id string, h uint64) { ps.add(id, h, at) }); err != nil {
			return fmt.Errorf("dedupe topic %s/%d@%d: %w", topic, rec.Partition, rec.Offset, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dedupe topic %s (it needs at least as many partitions as the usage topic): %w", topic, err)
	}
	return out, nil
}

// contentHash hashes everything a usage event says, canonically (field by
// field in a fixed order, strings length-prefixed, integers as 8 bytes,
// attributes in key order, times as instants), so two encodings of the same
// event hash alike and any difference in content is a different hash. The
// hash is stored in the dedupe topic: changing this function makes repeats
// of events priced before the change look like conflicts, so it is versioned
// with dedupeValueVersion.
func contentHash(ev *event.UsageEvent, scratch []byte) (uint64, []byte) {
	b := scratch[:0]
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	num := func(n int64) {
		b = binary.LittleEndian.AppendUint64(b, uint64(n))
	}
	str(ev.EventID)
	num(ev.EventTime.UnixNano())
	str(ev.Tenant)
	str(ev.Provider)
	str(ev.Model)
	str(ev.Operation)
	str(ev.ServiceTier)
	str(ev.Region)
	for _, n := range [...]int64{ev.InputTokens, ev.CacheReadInputTokens, ev.CacheWriteInputTokens, ev.CacheWrite1hInputTokens,
		ev.OutputTokens, ev.ReasoningTokens, ev.Units.Images, ev.Units.AudioSeconds, ev.Units.Requests, ev.Units.ToolCalls, ev.Units.WebSearches} {
		num(n)
	}
	for _, s := range [...]string{ev.Workflow, ev.PromptTemplate, ev.PromptVersion, ev.UserID, ev.Team, ev.Application,
		ev.Environment, ev.AgentName, ev.TraceID, ev.SpanID, ev.ConversationID, ev.SessionID} {
		str(s)
	}
	// Hashed only when set, so events without it (every event before the
	// field existed) keep the hash they were stored with.
	if ev.UsageCompleteness != "" {
		str("usage_completeness")
		str(ev.UsageCompleteness)
	}
	num(int64(len(ev.Attributes)))
	if len(ev.Attributes) > 0 {
		var arr [16]string
		keys := arr[:0]
		for k := range ev.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			str(k)
			str(ev.Attributes[k])
		}
	}
	if rc := ev.ReportedCost; rc != nil {
		num(1)
		str(rc.Amount.String())
		str(rc.Currency)
	} else {
		num(0)
	}
	return xxhash.Sum64(b), b
}
