package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/attribution"
	"github.com/tokenmeter/tokenmeter/internal/contract"
	"github.com/tokenmeter/tokenmeter/internal/contract/pricedv1"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/ingest"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// Pricer prices one usage event in a billing currency; *pricing.Engine is one.
// A *pricing.Error is permanent (DLQ with its Reason).
type Pricer interface {
	Price(ev *event.UsageEvent, billingCurrency string, out *event.PricedUsageEvent) error
}

// DLQ reasons the processor adds to those of ingest (invalid_json,
// unknown_field, invalid_field) and pricing (unknown_model, fx_missing).
const (
	ReasonUnknownTenant     = "unknown_tenant"     // no tenant with the event's id in the config
	ReasonDuplicateConflict = "duplicate_conflict" // an event_id already priced with different content
	ReasonPricingFailed     = "pricing_failed"     // the engine failed without a reason (a bug; logged)
	ReasonTooLarge          = "too_large"          // the priced record would exceed maxPricedBytes
)

// Size limits. A record the broker (max.message.bytes, 1 MiB by default) or
// the client (ProducerBatchMaxBytes) refuses would fail its transaction again
// on every retry, and bad input must never stop the loop: an event whose
// priced record would be too large goes to the DLQ instead, and a DLQ record
// keeps at most maxDLQOriginal bytes of the original (then it says so in
// detail; such a record cannot be replayed).
const (
	maxPricedBytes = 900 << 10
	maxDLQOriginal = 512 << 10
	maxDLQDetail   = 4 << 10
)

type verdictKind uint8

const (
	verdictPriced verdictKind = iota
	verdictDuplicate
	verdictRejected
)

// verdict is what became of one usage record.
type verdict struct {
	kind   verdictKind
	reason string // rejected: DLQ reason
	detail string
	hash   uint64 // priced: content hash
}

// transformer turns usage records into priced records; one per processing
// goroutine (it reuses its scratch space).
type transformer struct {
	tenants *tenant.Registry
	prices  Pricer
	attr    *attribution.Attributor
	limits  limits.Limits // defaulted

	out     event.PricedUsageEvent
	enc     contract.Encoder
	dedupe  dedupeBatches
	scratch []byte // content hash input
	key     []byte // dedupe key of the event being transformed
	slab    []byte
	recs    []kgo.Record // produced records are cut from chunks of these
}

// decodeUsage is the decoder shared with the collector, so a record written
// straight to usage.v1 is held to the same rules (strict fields, provider
// aliases, provider-native usage objects, validation) as one posted over HTTP.
var decodeUsage = ingest.DecodeUsageWithin

// transform decodes, validates, dedupes, attributes and prices one record.
// On verdictPriced, t.out holds the priced event. The event is decoded
// straight into t.out and attributed there (no copies of the event).
func (t *transformer) transform(key, value []byte, now time.Time, seen *seenSet) verdict {
	t.out = event.PricedUsageEvent{}
	ev := &t.out.UsageEvent
	if err := decodeUsage(value, now, t.limits, ev); err != nil {
		// t.out.UsageEvent: what could be decoded, for the DLQ record.
		var ie *ingest.ItemError
		if errors.As(err, &ie) {
			return verdict{kind: verdictRejected, reason: ie.Reason, detail: ie.Error()}
		}
		return verdict{kind: verdictRejected, reason: ingest.ReasonInvalidJSON, detail: err.Error()}
	}
	if len(key)+len(value) > t.limits.MaxRecordBytes {
		// Refused as the collector refuses it: its priced record could
		// exceed the brokers' max.message.bytes, and a priced record the
		// broker refuses would stop the partition.
		return verdict{kind: verdictRejected, reason: ingest.ReasonLimit,
			detail: fmt.Sprintf("record is %d bytes (key + value), over limits.%s (%d)", len(key)+len(value), limits.BreachRecord, t.limits.MaxRecordBytes)}
	}
	ten, ok := t.tenants.Lookup(ev.Tenant)
	if !ok {
		return verdict{kind: verdictRejected, reason: ReasonUnknownTenant, detail: fmt.Sprintf("tenant %q is not configured", ev.Tenant)}
	}
	var h uint64
	h, t.scratch = contentHash(ev, t.scratch)
	t.key = appendDedupeKey(t.key[:0], ev.Tenant, ev.EventID)
	if prev, ok := seen.lookup(t.key); ok {
		if prev == h {
			return verdict{kind: verdictDuplicate}
		}
		return verdict{kind: verdictRejected, reason: ReasonDuplicateConflict,
			detail: fmt.Sprintf("event_id %q was already priced with different content (hash %016x, this one %016x)", ev.EventID, prev, h)}
	}
	t.attr.Apply(ev, &t.out) // in place: Apply reads ev before it writes t.out
	if err := t.prices.Price(&t.out.UsageEvent, ten.ReportingCurrency, &t.out); err != nil {
		var pe *pricing.Error
		if errors.As(err, &pe) {
			return verdict{kind: verdictRejected, reason: pe.Reason, detail: pe.Detail}
		}
		return verdict{kind: verdictRejected, reason: ReasonPricingFailed, detail: err.Error()}
	}
	// The calendar day in the tenant's reporting zone travels with the
	// record, so every sink stores the same local_date (issue 9).
	loc := ten.Location
	if loc == nil {
		loc = time.UTC
	}
	t.out.LocalDate, t.out.TimeZone = ev.EventTime.In(loc).Format(time.DateOnly), loc.String()
	return verdict{kind: verdictPriced, hash: h}
}

// encodePriced encodes t.out for priced.v1 (the contract in schemas/proto).
func (t *transformer) encodePriced() ([]byte, error) {
	t.reserve(4096)
	start := len(t.slab)
	b, err := t.enc.AppendPriced(t.slab, &t.out)
	if err != nil {
		return nil, err
	}
	t.slab = b
	return t.slab[start:len(t.slab):len(t.slab)], nil
}

// reserve makes room for n more bytes in the slab that record keys and
// values are cut from: one allocation per few hundred records instead of
// several per record. Produced records keep their slab alive until the
// client is done with them.
func (t *transformer) reserve(n int) {
	if cap(t.slab)-len(t.slab) < n {
		t.slab = make([]byte, 0, max(256<<10, n))
	}
}

// record returns a new, zero record for producing, cut from a chunk (one
// allocation per 32 records instead of one each). Chunks are never reused:
// a produced record belongs to the client until its promise has run.
func (t *transformer) record() *kgo.Record {
	if len(t.recs) == 0 {
		t.recs = make([]kgo.Record, 32)
	}
	r := &t.recs[0]
	t.recs = t.recs[1:]
	return r
}

// pricedKey is the priced record's key: tenant/attributed workflow.
func (t *transformer) pricedKey() []byte {
	ev := &t.out.UsageEvent
	t.reserve(len(ev.Tenant) + 1 + len(ev.Workflow))
	start := len(t.slab)
	t.slab = append(append(append(t.slab, ev.Tenant...), '/'), ev.Workflow...)
	return t.slab[start:len(t.slab):len(t.slab)]
}

// dedupeKey is what the dedupe memory and log are keyed by: event ids are
// idempotency keys within a tenant, so two tenants may use the same id.
// Tenant ids cannot contain "/", so the form is unambiguous.
func dedupeKey(tenant, eventID string) string { return tenant + "/" + eventID }

// appendDedupeKey appends dedupeKey(tenant, eventID) to b.
func appendDedupeKey(b []byte, tenant, eventID string) []byte {
	return append(append(append(b, tenant...), '/'), eventID...)
}

// dedupeBatches collects the dedupe entries of the open transaction per
// usage partition (one record each at the end, see produceBatch).
type dedupeBatches struct {
	parts map[int32]*pricedv1.DedupeBatch
	order []int32
	pool  []pricedv1.DedupeEntry // entries are cut from this; reset per transaction
}

func (d *dedupeBatches) add(part int32, id string, hash uint64) {
	if d.parts == nil {
		d.parts = map[int32]*pricedv1.DedupeBatch{}
	}
	b := d.parts[part]
	if b == nil {
		b = &pricedv1.DedupeBatch{}
		d.parts[part] = b
		d.order = append(d.order, part)
	}
	if len(d.pool) == cap(d.pool) {
		d.pool = make([]pricedv1.DedupeEntry, 0, 1024) // entries already handed out stay with their batch
	}
	d.pool = append(d.pool, pricedv1.DedupeEntry{Key: id, ContentHash: hash})
	b.Entries = append(b.Entries, &d.pool[len(d.pool)-1])
}

func (d *dedupeBatches) full(part int32) bool {
	b := d.parts[part]
	return b != nil && len(b.Entries) >= dedupeBatchMax
}

// partitions are the partitions with entries, in first-seen order.
func (d *dedupeBatches) partitions() []int32 {
	out := d.order[:0:0]
	for _, p := range d.order {
		if b := d.parts[p]; b != nil && len(b.Entries) > 0 {
			out = append(out, p)
		}
	}
	return out
}

func (d *dedupeBatches) reset() {
	clear(d.parts)
	d.order = d.order[:0]
	d.pool = nil
}

// produceDedupe produces the dedupe record of part's collected entries and
// empties them.
func (t *transformer) produceDedupe(ctx context.Context, sess *kgo.GroupTransactSession, topic string, part int32,
	promise func(*kgo.Record, error)) error {
	b := t.dedupe.parts[part]
	v, err := appendDedupeBatch(nil, b)
	if err != nil {
		return fmt.Errorf("encode dedupe record: %w", err)
	}
	b.Entries = nil
	r := t.record()
	r.Topic, r.Partition, r.Value = topic, part, v
	sess.Produce(ctx, r, promise)
	return nil
}

// dlqRecord builds the DLQ value for a rejected usage record; partial is what
// could be decoded of it (empty when nothing could).
func dlqRecord(rec *kgo.Record, v verdict, partial *event.UsageEvent, now time.Time) ([]byte, error) {
	d := event.DLQRecord{
		ID:          rec.Topic + "/" + strconv.FormatInt(int64(rec.Partition), 10) + "/" + strconv.FormatInt(rec.Offset, 10),
		Stage:       "processor",
		Reason:      v.reason,
		Detail:      v.detail,
		SourceTopic: rec.Topic,
		Partition:   rec.Partition,
		Offset:      rec.Offset,
		RejectedAt:  now.UTC(),
		Original:    rec.Value,
	}
	if len(d.Detail) > maxDLQDetail {
		d.Detail = d.Detail[:maxDLQDetail] + "…"
	}
	if len(d.Original) > maxDLQOriginal {
		d.Original = d.Original[:maxDLQOriginal]
		d.Detail += fmt.Sprintf(" (original truncated from %d to %d bytes)", len(rec.Value), maxDLQOriginal)
	}
	if partial != nil {
		d.Tenant, d.EventID, d.Provider, d.Model, d.EventTime = partial.Tenant, partial.EventID, partial.Provider, partial.Model, partial.EventTime
	}
	return json.Marshal(&d)
}
