package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/ingest"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// RepriceOptions selects the DLQ records `tokenmeter reprice` replays.
type RepriceOptions struct {
	// Since and Until bound the records' rejected_at (or event_time with
	// ByEventTime): Since inclusive, Until exclusive; zero means unbounded.
	Since, Until time.Time
	ByEventTime  bool
	// Offsets, when set, limits the replay to these DLQ partitions and
	// inclusive offset ranges (To < 0: to the end).
	Offsets map[int32]OffsetRange
	// Reasons to replay. Default unknown_model and fx_missing: the rejections
	// a catalogue or FX fix resolves. Anything else would only fail again.
	Reasons []string
	// DryRun counts what would be replayed without producing.
	DryRun bool
}

// OffsetRange is an inclusive range of offsets in one partition.
type OffsetRange struct{ From, To int64 }

// RepriceResult says what a replay did.
type RepriceResult struct {
	Scanned  int            // committed DLQ records read in the selected ranges
	Replayed int            // records produced back onto the usage topic (or that would be, dry run)
	ByReason map[string]int // replayed per reason
}

// ParseOffsets parses "P:FROM-TO,P:FROM-" (inclusive; an empty TO is the end).
func ParseOffsets(s string) (map[int32]OffsetRange, error) {
	out := map[int32]OffsetRange{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, rng, ok := strings.Cut(part, ":")
		from, to, ok2 := strings.Cut(rng, "-")
		pn, err1 := strconv.ParseInt(p, 10, 32)
		fn, err2 := strconv.ParseInt(from, 10, 64)
		tn := int64(-1)
		var err3 error
		if to != "" {
			tn, err3 = strconv.ParseInt(to, 10, 64)
		}
		if !ok || !ok2 || err1 != nil || err2 != nil || err3 != nil || pn < 0 || fn < 0 || (tn >= 0 && tn < fn) {
			return nil, fmt.Errorf("offsets: %q is not PARTITION:FROM-TO or PARTITION:FROM- (inclusive offsets)", part)
		}
		if _, dup := out[int32(pn)]; dup {
			return nil, fmt.Errorf("offsets: partition %d given twice", pn)
		}
		out[int32(pn)] = OffsetRange{From: fn, To: tn}
	}
	if len(out) == 0 {
		return nil, errors.New("offsets: empty")
	}
	return out, nil
}

// Reprice replays DLQ records whose reason a catalogue or FX fix resolves
// back onto the usage topic, with their original bytes and key, so the
// processor prices them with the fixed catalogue.
//
// Nothing is counted twice: the DLQ held events the processor never priced
// (a rejected event is not recorded in the dedupe log), and every replayed
// event keeps its event_id, so an event that was meanwhile priced (resent by
// its producer after the fix) or that is replayed twice (reprice run again
// over the same range) is an identical duplicate the processor drops. That
// protection holds within the dedupe window (processor.dedupe.window, 7 days
// by default) of the first successful pricing.
func Reprice(ctx context.Context, k kafkax.Config, opts RepriceOptions, progress func(string)) (RepriceResult, error) {
	res := RepriceResult{ByReason: map[string]int{}}
	if len(opts.Reasons) == 0 {
		opts.Reasons = []string{pricing.ReasonUnknownModel, pricing.ReasonFXMissing}
	}
	if progress == nil {
		progress = func(string) {}
	}
	cl, err := kgo.NewClient(k.ClientOpts()...)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	dlq := k.Topics.DLQ
	rng := kafkax.ReadRange{}
	if !opts.Since.IsZero() && !opts.ByEventTime {
		// DLQ records are written when rejected: skip what is older.
		rng.AfterMilli = opts.Since.UnixMilli()
	}
	if opts.Offsets != nil {
		rng.From, rng.To = map[int32]int64{}, map[int32]int64{}
		for p, r := range opts.Offsets {
			rng.Partitions = append(rng.Partitions, p)
			rng.From[p] = r.From
			if r.To >= 0 {
				rng.To[p] = r.To
			}
		}
		slices.Sort(rng.Partitions)
	}

	var batch []*kgo.Record
	flush := func() error {
		if len(batch) == 0 || opts.DryRun {
			batch = batch[:0]
			return nil
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			return fmt.Errorf("produce to %s: %w", k.Topics.Usage, err)
		}
		progress(fmt.Sprintf("replayed %d records", res.Replayed))
		batch = batch[:0]
		return nil
	}
	read := 0
	_, err = kafkax.ReadToEnd(ctx, k.ClientOpts(), dlq, rng, func(r *kgo.Record) error {
		read++
		res.Scanned++
		var d event.DLQRecord
		if json.Unmarshal(r.Value, &d) != nil || !slices.Contains(opts.Reasons, d.Reason) || len(d.Original) == 0 {
			return nil
		}
		if d.SourceTopic != "" && d.SourceTopic != k.Topics.Usage {
			return nil
		}
		t := d.RejectedAt
		if opts.ByEventTime {
			t = d.EventTime
		}
		if (!opts.Since.IsZero() && t.Before(opts.Since)) || (!opts.Until.IsZero() && !t.Before(opts.Until)) {
			return nil
		}
		// The key the record had: decoded by the processor's own decoder, so a
		// replay lands on the partition (and dedupe state) a retry would.
		ev, err := ingest.DecodeUsage(d.Original, time.Time{})
		if err != nil {
			_ = json.Unmarshal(d.Original, &ev) // best effort; the processor rejects it again
		}
		batch = append(batch, &kgo.Record{
			Topic:   k.Topics.Usage,
			Key:     ev.Key(),
			Value:   d.Original,
			Headers: []kgo.RecordHeader{{Key: "tokenmeter-replay-of", Value: []byte(d.ID)}},
		})
		res.Replayed++
		res.ByReason[d.Reason]++
		if len(batch) >= 1000 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("DLQ topic %s: %w", dlq, err)
	}
	if read == 0 {
		progress("nothing to read in the selected DLQ range")
	}
	return res, flush()
}
