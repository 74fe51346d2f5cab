package sink

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

func produceRange(t *testing.T, prod *kgo.Client, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i <= to; i++ {
		e := pricedEvent(i)
		b, _ := json.Marshal(e)
		recs = append(recs, &kgo.Record{Topic: event.TopicPriced, Key: e.Key(), Value: b})
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, conn driver.Conn, query string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestViewFailingMidInsertRecovers: a rollup view throws in the middle of
// an insert (a test-only view that fails on one marked row while a switch
// table is not empty, as "too many parts" or a memory limit would). The raw
// table is written and the views are not: the state a retry without
// deduplication tokens would double or lose. The sink is killed while it
// fails, the view recovers, a new sink replays the pending block from the
// ledger, and every table and rollup holds every event exactly once.
func TestViewFailingMidInsertRecovers(t *testing.T) {
	conn, db := migrated(t)
	ctx := context.Background()
	for _, st := range []string{
		"CREATE TABLE " + db + ".fail_switch (on UInt8) ENGINE = MergeTree ORDER BY tuple()",
		"INSERT INTO " + db + ".fail_switch SELECT 1",
		"CREATE TABLE " + db + ".fail_sink (n UInt64) ENGINE = MergeTree ORDER BY tuple()",
		"CREATE MATERIALIZED VIEW " + db + ".mv_usage_m_fail TO " + db + ".fail_sink AS SELECT count() + throwIf(countIf(event_id = 'ev-00050') > 0 AND (SELECT count() FROM " + db + ".fail_switch) > 0, 'injected view failure') AS n FROM " + db + ".priced_usage",
	} {
		if err := conn.Exec(ctx, st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, event.TopicPriced, event.TopicOutcomes, event.TopicDLQ, event.TopicAlerts))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produceRange(t, prod, 1, 300)

	cfg := Config{BatchRows: 100_000, BatchAge: 50 * time.Millisecond, RetryInitial: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}
	cfg.ApplyDefaults()
	deps := testDeps(t, brokers)
	s1, err := NewWithStore(cfg, NewStore(conn, db), deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the view failing an insert", s1.failing)
	if err := s1.Ready(ctx); err == nil || !strings.Contains(err.Error(), "injected view failure") {
		t.Fatalf("Ready = %v, want the view's error", err)
	}
	raw := count(t, conn, "SELECT count() FROM "+db+".priced_usage")
	daily := count(t, conn, "SELECT sum(calls) FROM "+db+".usage_daily")
	pending := count(t, conn, "SELECT countIf(state = 'pending') FROM "+db+".sink_ledger FINAL")
	t.Logf("while the view fails: priced_usage %d rows, usage_daily %d calls, %d pending ledger entries", raw, daily, pending)
	if raw == daily || pending == 0 {
		t.Fatalf("the failure left priced_usage %d and usage_daily %d (pending %d): the test needs a half-written block", raw, daily, pending)
	}
	s1.kill()

	// The view recovers; more events arrive; a new sink takes over.
	if err := conn.Exec(ctx, "TRUNCATE TABLE "+db+".fail_switch"); err != nil {
		t.Fatal(err)
	}
	produceRange(t, prod, 301, 400)
	s2, err := NewWithStore(cfg, NewStore(conn, db), deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown(ctx)
	waitFor(t, conn, "SELECT sum(calls) FROM "+db+".usage_minute", 400)
	waitLedgerDone(t, conn, db)
	if err := s2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// 400 events of i µUSD: 1e-6 * 400 * 401 / 2 = 0.0802 USD.
	want := decimal.RequireFromString("0.0802")
	var rows, ids uint64
	var cost decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id), sum(effective_cost) FROM "+db+".priced_usage").Scan(&rows, &ids, &cost); err != nil {
		t.Fatal(err)
	}
	if rows != 400 || ids != 400 || !cost.Equal(want) {
		t.Errorf("priced_usage: %d rows, %d ids, %s USD; want 400, 400, %s", rows, ids, cost, want)
	}
	for _, rollup := range []string{"usage_minute", "usage_hourly", "usage_daily"} {
		var calls uint64
		var c decimal.Decimal
		if err := conn.QueryRow(ctx, "SELECT sum(calls), sum(effective_cost) FROM "+db+"."+rollup).Scan(&calls, &c); err != nil {
			t.Fatal(err)
		}
		if calls != 400 || !c.Equal(want) {
			t.Errorf("%s: %d calls, %s USD; want 400, %s", rollup, calls, c, want)
		}
	}
	if n := count(t, conn, "SELECT sum(n) FROM "+db+".fail_sink"); n != 400 {
		t.Errorf("the failing view's own table counts %d rows, want 400", n)
	}
}

// TestYoungerKafkaLogStopsPartition: ClickHouse holds offsets of a log the
// broker no longer has (a new data dir: an empty log under a new topic
// id). The sink must not resume at offset 0 of the new log as if nothing
// happened, nor skip: it stops the partition and says how to resolve it;
// after `reset-offsets` (ResetOffsets) it stores the new log's events.
func TestYoungerKafkaLogStopsPartition(t *testing.T) {
	conn, db := migrated(t)
	ctx := context.Background()
	newCluster := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, event.TopicPriced, event.TopicOutcomes, event.TopicDLQ, event.TopicAlerts))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cfg := Config{BatchAge: 20 * time.Millisecond, RetryInitial: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}
	cfg.ApplyDefaults()

	// The old log: 50 events stored.
	old := newCluster()
	prod, err := kgo.NewClient(kgo.SeedBrokers(old.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	produceRange(t, prod, 1, 50)
	prod.Close()
	s1, err := NewWithStore(cfg, NewStore(conn, db), testDeps(t, old.ListenAddrs()))
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, conn, "SELECT count() FROM "+db+".priced_usage", 50)
	waitLedgerDone(t, conn, db)
	if err := s1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	old.Close()

	// A new, younger log: 10 events at offsets 0..9, under a new topic id.
	young := newCluster()
	defer young.Close()
	prod, err = kgo.NewClient(kgo.SeedBrokers(young.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produceRange(t, prod, 1001, 1010)
	deps := testDeps(t, young.ListenAddrs())
	s2, err := NewWithStore(cfg, NewStore(conn, db), deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown(ctx)
	var rerr error
	waitUntil(t, "the partition stopped", func() bool {
		rerr = s2.Ready(ctx)
		return rerr != nil && strings.Contains(rerr.Error(), "stopped")
	})
	for _, want := range []string{"priced.v1/0", "tokenmeter sink reset-offsets", "--partition 0"} {
		if !strings.Contains(rerr.Error(), want) {
			t.Errorf("Ready = %q; want it to contain %q", rerr, want)
		}
	}
	time.Sleep(300 * time.Millisecond) // a stopped partition must stay stopped; nothing may arrive
	if n := count(t, conn, "SELECT count() FROM "+db+".priced_usage"); n != 50 {
		t.Fatalf("priced_usage has %d rows while the partition is stopped, want the old 50", n)
	}
	if err := s2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// The operator accepts the new log from its start.
	if _, err := ResetOffsets(ctx, NewStore(conn, db), deps.Kafka, event.TopicPriced, 0, ResetEarliest); err != nil {
		t.Fatal(err)
	}
	s3, err := NewWithStore(cfg, NewStore(conn, db), deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer s3.Shutdown(ctx)
	waitFor(t, conn, "SELECT count() FROM "+db+".priced_usage", 60)
	waitLedgerDone(t, conn, db)
	if err := s3.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".priced_usage WHERE event_id >= 'ev-01001'"); n != 10 {
		t.Errorf("the new log's events stored %d times in total, want 10", n)
	}
}

// A column-wise batch (the plug point for a decoder that builds columns)
// goes in through the driver's columnar API, and the same batch under the
// same token is stored once.
func TestColumnarBatchOncePerToken(t *testing.T) {
	conn, db := migrated(t)
	ctx := context.Background()
	at := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	strs := func(v ...string) []string { return v }
	tb := TableBatch{Table: "dlq", Columns: append(append([]string{}, dlqTable.columns...), kafkaColumns...), Len: 2, Cols: []any{
		strs("d1", "d2"), strs("sink", "sink"), strs("undecodable", "undecodable"), strs("x", "y"), strs("acme", "acme"),
		strs("", ""), strs("", ""), strs("", ""), strs("t", "t"), []int32{0, 0}, []int64{1, 2},
		[]time.Time{at, at}, []time.Time{at, at}, strs("a", "b"),
		strs("t", "t"), []int32{0, 0}, []int64{1, 2},
	}}
	store := NewStore(conn, db)
	for range 2 {
		if err := store.Insert(ctx, tb, "block-x/dlq"); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".dlq WHERE original IN ('a', 'b')"); n != 2 {
		t.Fatalf("dlq holds %d rows after the same columnar batch twice under one token, want 2", n)
	}
	// Another token is another block.
	if err := store.Insert(ctx, tb, "block-y/dlq"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".dlq"); n != 4 {
		t.Fatalf("dlq holds %d rows after a second token, want 4", n)
	}
}

// TestRebalanceWhileABlockFails: sink A cannot write its block, sink B
// joins the group and takes some of A's partitions, then A recovers. Either
// A's pending entry never reached the ledger (A drops the block on the
// revoke, keeps the rows of partitions it still owns, and B reads its
// partitions again) or it did and only the inserts failed (B replays A's
// block with A's token, A's own retry is then a no-op). Both ways every
// event is stored once.
func TestRebalanceWhileABlockFails(t *testing.T) {
	for _, mode := range []string{"pending write fails", "inserts fail"} {
		t.Run(mode, func(t *testing.T) {
			conn, db := migrated(t)
			ctx := context.Background()
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, event.TopicPriced, event.TopicOutcomes, event.TopicDLQ, event.TopicAlerts))
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			brokers := cluster.ListenAddrs()
			prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			produceRange(t, prod, 1, 400)

			cfg := Config{BatchAge: 20 * time.Millisecond, RetryInitial: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond}
			cfg.ApplyDefaults()
			deps := testDeps(t, brokers)
			fa := &faultStore{Store: NewStore(conn, db)}
			if mode == "inserts fail" {
				fa.insertsDown = true
			} else {
				fa.writesDown = true
			}
			a, err := NewWithStore(cfg, fa, deps)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Start(ctx, nil); err != nil {
				t.Fatal(err)
			}
			defer a.Shutdown(ctx)
			waitUntil(t, "sink A failing its block", a.failing)
			a.mu.Lock()
			pendingWritten := a.inflight != nil && a.inflight.pendingWritten
			a.mu.Unlock()
			if pendingWritten != (mode == "inserts fail") {
				t.Fatalf("block in flight with pending written = %v in mode %q", pendingWritten, mode)
			}

			b, err := NewWithStore(cfg, NewStore(conn, db), deps)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Start(ctx, nil); err != nil {
				t.Fatal(err)
			}
			defer b.Shutdown(ctx)
			waitUntil(t, "sink B storing its partitions", func() bool {
				return count(t, conn, "SELECT count() FROM "+db+".priced_usage") > 0
			})
			fa.mu.Lock()
			fa.down, fa.insertsDown, fa.writesDown = false, false, false
			fa.mu.Unlock()
			waitFor(t, conn, "SELECT sum(calls) FROM "+db+".usage_hourly", 400)
			waitLedgerDone(t, conn, db)
			if err := a.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if err := b.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			var rows, ids, calls uint64
			if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM "+db+".priced_usage").Scan(&rows, &ids); err != nil {
				t.Fatal(err)
			}
			if err := conn.QueryRow(ctx, "SELECT sum(calls) FROM "+db+".usage_daily").Scan(&calls); err != nil {
				t.Fatal(err)
			}
			if rows != 400 || ids != 400 || calls != 400 {
				t.Fatalf("priced_usage %d rows / %d ids, usage_daily %d calls; want 400 each", rows, ids, calls)
			}
		})
	}
}
