package kafkax

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadRange chooses what ReadToEnd reads of each partition.
type ReadRange struct {
	// Partitions limits the read; nil means every partition of the topic.
	// A partition named here that the topic does not have is an error.
	Partitions []int32
	// From is a partition's first offset to read (default: its log start;
	// an offset before the log start reads from the log start).
	From map[int32]int64
	// AfterMilli > 0 starts each partition at its first record stamped at
	// or after this Unix millisecond, or at From if that is later.
	AfterMilli int64
	// To is a partition's last offset to read, inclusive (default and cap:
	// the last stable offset listed when the read starts, minus one).
	To map[int32]int64
}

// ReadToEnd reads the committed records of topic, per partition from the
// range's start to its end as listed when the read starts, calling fn with
// each data record in offset order within a partition (transaction markers
// are read past, not passed). It is the one way tokenmeter reads a topic to
// its end (rebuilding budget state, the alerts and deliveries already sent,
// the processor's dedupe memory, DLQ replays), with one policy:
//
//   - a partition with nothing between its start and end (empty, or every
//     record expired by retention) is done at once, never waited on;
//   - retriable fetch errors are retried by the client; any other fetch
//     error, or an error from fn, ends the read with that error;
//   - records appended after the read started are not read.
//
// It returns, per partition read or skipped, the offset after the last one
// it covered, where a consumer that follows the topic continues.
func ReadToEnd(ctx context.Context, opts []kgo.Opt, topic string, r ReadRange, fn func(*kgo.Record) error) (map[int32]int64, error) {
	admc, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(admc)
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	var starts, after kadm.ListedOffsets
	if err == nil {
		err = ends.Error()
	}
	if err == nil {
		starts, err = adm.ListStartOffsets(ctx, topic)
	}
	if err == nil && r.AfterMilli > 0 {
		after, err = adm.ListOffsetsAfterMilli(ctx, r.AfterMilli, topic)
	}
	admc.Close()
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	parts := r.Partitions
	if parts == nil {
		ends.Each(func(o kadm.ListedOffset) { parts = append(parts, o.Partition) })
	}
	next := map[int32]int64{}
	last := map[int32]int64{}
	consume := map[int32]kgo.Offset{}
	for _, p := range parts {
		e, ok := ends.Lookup(topic, p)
		if !ok || e.Err != nil {
			return nil, fmt.Errorf("topic %s has no partition %d", topic, p)
		}
		from := int64(0)
		if s, ok := starts.Lookup(topic, p); ok && s.Err == nil {
			from = s.Offset
		}
		if f, ok := r.From[p]; ok {
			from = max(from, f)
		}
		if a, ok := after.Lookup(topic, p); ok && a.Err == nil {
			from = max(from, a.Offset)
		}
		to := e.Offset - 1
		if t, ok := r.To[p]; ok {
			to = min(to, t)
		}
		next[p] = max(from, to+1)
		if from <= to {
			consume[p] = kgo.NewOffset().At(from)
			last[p] = to
		}
	}
	if len(consume) == 0 {
		return next, nil
	}
	cl, err := kgo.NewClient(append(slices.Clip(opts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: consume}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	want := maps.Clone(last)
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil && !kerr.IsRetriable(err) {
				ferr = fmt.Errorf("read %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		var stop error
		fs.EachRecord(func(rec *kgo.Record) {
			end, ok := want[rec.Partition]
			if stop != nil || !ok || rec.Offset > end {
				return
			}
			if !rec.Attrs.IsControl() {
				if err := fn(rec); err != nil {
					stop = err
					return
				}
			}
			if rec.Offset >= end {
				delete(want, rec.Partition)
			}
		})
		if stop != nil {
			return nil, stop
		}
	}
	return next, nil
}
