package sink

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/kafkax"
)

// Special values of ResetOffsets' to.
const (
	ResetEarliest int64 = -2 // the current log start
	ResetLatest   int64 = -1 // the current log end: skip what is there now
)

// ResetResult says what ResetOffsets did.
type ResetResult struct {
	Topic      string
	Partition  int32
	Previous   string // the ledger entry it replaced, as text ("" if none)
	ResumeAt   int64
	TopicID    string
	Generation uint32
}

// ResetOffsets is the operator's answer to a stopped partition (ledger.go):
// it accepts the current Kafka log of topic/partition and makes the sink
// resume at offset to (or ResetEarliest / ResetLatest), by writing a done
// ledger entry ending at to-1 under the next generation and the topic's
// current id. Rows already in ClickHouse stay; the sink picks the new entry
// up when it is (re)started or the partition is next assigned.
func ResetOffsets(ctx context.Context, store Store, k kafkax.Config, topic string, partition int32, to int64) (ResetResult, error) {
	res := ResetResult{Topic: topic, Partition: partition}
	cl, err := kgo.NewClient(k.ClientOpts()...)
	if err != nil {
		return res, fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return res, fmt.Errorf("kafka metadata: %w", err)
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return res, fmt.Errorf("kafka: topic %s not found", topic)
	}
	if _, ok := td.Partitions[partition]; !ok {
		return res, fmt.Errorf("kafka: topic %s has no partition %d", topic, partition)
	}
	if td.ID != [16]byte{} {
		res.TopicID = td.ID.String()
	}
	var offs kadm.ListedOffsets
	switch to {
	case ResetEarliest:
		offs, err = adm.ListStartOffsets(ctx, topic)
	case ResetLatest:
		offs, err = adm.ListEndOffsets(ctx, topic)
	default:
		if to < 0 {
			return res, fmt.Errorf("offset %d: must be >= 0", to)
		}
	}
	if err != nil {
		return res, fmt.Errorf("kafka offsets: %w", err)
	}
	if offs != nil {
		o, ok := offs.Lookup(topic, partition)
		if !ok || o.Err != nil {
			return res, fmt.Errorf("kafka offsets of %s/%d: %v", topic, partition, o.Err)
		}
		to = o.Offset
	}
	led, err := store.Ledger(ctx, topic)
	if err != nil {
		return res, err
	}
	gen := uint32(1)
	if prev, ok := led[partition]; ok {
		gen = prev.Generation + 1
		state := "pending"
		if prev.Done {
			state = "done"
		}
		res.Previous = fmt.Sprintf("%s up to offset %d (generation %d, topic id %s, block %s)", state, prev.Last, prev.Generation, prev.TopicID, prev.Block)
	}
	e := ledgerEntry{Topic: topic, Partition: partition, Generation: gen, First: to, Last: to - 1, Done: true,
		Block: "reset-offsets", TopicID: res.TopicID, Group: "reset-offsets"}
	if err := store.WriteLedger(ctx, []ledgerEntry{e}); err != nil {
		return res, err
	}
	res.ResumeAt, res.Generation = to, gen
	return res, nil
}
