package kafkax

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestReadToEndPolicy(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Partition 0: five plain records stamped t0..t0+4s; partition 1: two
	// records in a committed transaction (the log ends in a commit marker);
	// partition 2: empty.
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	pl, _ := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	for i := 0; i < 5; i++ {
		r := &kgo.Record{Topic: "t", Partition: 0, Value: []byte(fmt.Sprint("p0-", i)), Timestamp: t0.Add(time.Duration(i) * time.Second)}
		if err := pl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	pl.Close()
	tx, _ := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("rte"))...)
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := tx.ProduceSync(ctx, &kgo.Record{Topic: "t", Partition: 1, Value: []byte(fmt.Sprint("p1-", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	tx.Close()

	read := func(r ReadRange) ([]string, map[int32]int64, error) {
		var got []string
		next, err := ReadToEnd(ctx, opts, "t", r, func(rec *kgo.Record) error {
			got = append(got, string(rec.Value))
			return nil
		})
		return got, next, err
	}
	// Everything: the empty partition and the trailing commit marker do not
	// hold the read up; markers are not passed to fn.
	got, next, err := read(ReadRange{})
	slices.Sort(got)
	if err != nil || strings.Join(got, ",") != "p0-0,p0-1,p0-2,p0-3,p0-4,p1-0,p1-1" {
		t.Fatalf("all: %v %v", err, got)
	}
	if next[0] != 5 || next[1] != 3 || next[2] != 0 {
		t.Fatalf("next offsets %v, want 0:5 1:3 (after the marker) 2:0", next)
	}
	// From/To within partition 0, and AfterMilli.
	got, _, err = read(ReadRange{Partitions: []int32{0}, From: map[int32]int64{0: 1}, To: map[int32]int64{0: 2}})
	if err != nil || strings.Join(got, ",") != "p0-1,p0-2" {
		t.Fatalf("range: %v %v", err, got)
	}
	got, _, err = read(ReadRange{Partitions: []int32{0}, AfterMilli: t0.Add(3 * time.Second).UnixMilli()})
	if err != nil || strings.Join(got, ",") != "p0-3,p0-4" {
		t.Fatalf("after milli: %v %v", err, got)
	}
	// A partition the topic lacks, and an error from fn, end the read.
	if _, _, err := read(ReadRange{Partitions: []int32{7}}); err == nil || !strings.Contains(err.Error(), "no partition 7") {
		t.Fatalf("missing partition: %v", err)
	}
	stop := errors.New("stop")
	n := 0
	_, err = ReadToEnd(ctx, opts, "t", ReadRange{Partitions: []int32{0}}, func(*kgo.Record) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("fn error: %v after %d records", err, n)
	}
}
