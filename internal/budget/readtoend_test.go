package budget

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// After retention deleted every record of a partition, its end offset is
// above zero but nothing can be read: reading to the end must return, not
// wait for a record that will never come (which kept the role not ready).
func TestReadToEndSkipsPartitionsWhoseRecordsExpired(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "alerts"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Partition 0: three records, all deleted. Partition 1: two records, kept.
	for i, p := range []int32{0, 0, 0, 1, 1} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "alerts", Partition: p, Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "alerts", Partition: 0, At: 3})
	if _, err := kadm.NewClient(cl).DeleteRecords(ctx, del); err != nil {
		t.Fatal(err)
	}

	var got []byte
	if err := readToEnd(ctx, opts, "alerts", func(r *kgo.Record) { got = append(got, r.Value...) }); err != nil {
		t.Fatalf("readToEnd: %v", err)
	}
	if string(got) != string([]byte{3, 4}) {
		t.Fatalf("read %v, want the two records of partition 1", got)
	}
}
