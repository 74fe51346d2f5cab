package sink

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/money"
)

// faultStore injects ClickHouse failures around the real store: "down"
// fails every call without touching the server; landThenFail makes the
// next inserts reach ClickHouse and then report an error (the answer was
// lost), which the sink must not repeat.
type faultStore struct {
	Store
	mu           sync.Mutex
	down         bool
	insertsDown  bool // only table inserts fail (the ledger works)
	writesDown   bool // only ledger writes fail
	landThenFail int
	inserts      int
}

var errDown = errors.New("clickhouse down (injected)")

func (f *faultStore) set(down bool, landThenFail int) {
	f.mu.Lock()
	f.down, f.landThenFail = down, landThenFail
	f.mu.Unlock()
}

func (f *faultStore) Insert(ctx context.Context, tb TableBatch, token string) error {
	f.mu.Lock()
	down, ltf := f.down || f.insertsDown, f.landThenFail
	if ltf > 0 {
		f.landThenFail--
	}
	f.mu.Unlock()
	if down {
		return errDown
	}
	err := f.Store.Insert(ctx, tb, token)
	f.mu.Lock()
	f.inserts++
	f.mu.Unlock()
	if err == nil && ltf > 0 {
		return errors.New("connection reset after the block was sent (injected)")
	}
	return err
}

func (f *faultStore) isDown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

func (f *faultStore) Ledger(ctx context.Context, topic string) (map[int32]ledgerEntry, error) {
	if f.isDown() {
		return nil, errDown
	}
	return f.Store.Ledger(ctx, topic)
}

func (f *faultStore) WriteLedger(ctx context.Context, entries []ledgerEntry) error {
	f.mu.Lock()
	wd := f.writesDown
	f.mu.Unlock()
	if f.isDown() || wd {
		return errDown
	}
	return f.Store.WriteLedger(ctx, entries)
}

func (f *faultStore) LegacyHeldOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	if f.isDown() {
		return nil, errDown
	}
	return f.Store.LegacyHeldOffsets(ctx, topic)
}

func (f *faultStore) Ping(ctx context.Context) error {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return errDown
	}
	return f.Store.Ping(ctx)
}

// TestClickHouseDownAndLostAnswers: ClickHouse is down when the sink starts
// (resume waits, not ready), answers are lost after inserts landed, and
// ClickHouse goes down again mid-stream; the sink pauses, reports not
// ready, and once ClickHouse is back every record is stored exactly once.
func TestClickHouseDownAndLostAnswers(t *testing.T) {
	conn, db := migrated(t)
	ctx := context.Background()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, event.TopicPriced, event.TopicOutcomes, event.TopicDLQ, event.TopicAlerts))
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
	produce := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i <= to; i++ {
			e := pricedEvent(i)
			b := pricedValue(t, &e)
			recs = append(recs, &kgo.Record{Topic: event.TopicPriced, Key: e.Key(), Value: b})
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(1, 1000)

	fs := &faultStore{Store: NewStore(conn, db), down: true}
	cfg := Config{BatchRows: 50, BatchAge: 10 * time.Millisecond, RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond}
	cfg.ApplyDefaults()
	s, err := NewWithStore(cfg, fs, testDeps(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	waitUntil(t, "resume from ClickHouse failing at start", s.failing)
	if s.Ready(ctx) == nil {
		t.Fatal("ready while ClickHouse is down")
	}

	fs.set(false, 3) // up; the next 3 inserts land but their answers are lost
	waitFor(t, conn, "SELECT count() FROM "+db+".priced_usage", 1000)
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("not ready after catching up: %v", err)
	}

	fs.set(true, 0) // down mid-stream
	produce(1001, 2000)
	waitUntil(t, "inserts failing", s.failing)
	if s.Ready(ctx) == nil {
		t.Fatal("ready while inserts fail")
	}
	fs.set(false, 2)
	waitFor(t, conn, "SELECT count() FROM "+db+".priced_usage", 2000)
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// 2000 events of i µUSD: 1e-6 * 2000 * 2001 / 2 = 2.001 USD; billed * 7.8 = 15.6078 HKD.
	var rows, ids, calls uint64
	var cost, billed decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id), sum(effective_cost) FROM "+db+".priced_usage").Scan(&rows, &ids, &cost); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT sum(calls), sum(billed_effective_cost) FROM "+db+".usage_daily").Scan(&calls, &billed); err != nil {
		t.Fatal(err)
	}
	if rows != 2000 || ids != 2000 || calls != 2000 || !cost.Equal(decimal.RequireFromString("2.001")) || !billed.Equal(decimal.RequireFromString("15.6078")) {
		t.Fatalf("raw %d rows / %d ids / %s USD, daily %d calls / %s HKD; want 2000, 2000, 2.001, 2000, 15.6078", rows, ids, cost, calls, billed)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A record ClickHouse cannot hold (a cost beyond Decimal(38, 12)) goes to
// the dlq table with its bytes (refused by the decoder: undecodable); the records around it are stored, and the
// partition does not stall.
func TestUnstorableRecordGoesToDLQ(t *testing.T) {
	conn, db := migrated(t)
	ctx := context.Background()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, event.TopicPriced, event.TopicOutcomes, event.TopicDLQ, event.TopicAlerts))
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
	var recs []*kgo.Record
	for i := 1; i <= 3; i++ {
		e := pricedEvent(i)
		if i == 2 {
			e.EffectiveCost = money.FromCoef128(math.MaxInt64, 0) // coefficient ≈ 1.7e38, beyond Decimal(38, 12)'s 10^38 - 1
		}
		b := pricedValue(t, &e)
		recs = append(recs, &kgo.Record{Topic: event.TopicPriced, Key: e.Key(), Value: b})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := Config{BatchAge: 10 * time.Millisecond}
	cfg.ApplyDefaults()
	s, err := NewWithStore(cfg, NewStore(conn, db), testDeps(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(ctx)
	waitFor(t, conn, "SELECT (SELECT count() FROM "+db+".priced_usage) + (SELECT count() FROM "+db+".dlq)", 3)
	var priced, dlq uint64
	var reason string
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".priced_usage").Scan(&priced); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(), any(reason) FROM "+db+".dlq WHERE kafka_offset = 1 AND position(original, 'ev-00002') > 0").Scan(&dlq, &reason); err != nil {
		t.Fatal(err)
	}
	if priced != 2 || dlq != 1 || reason != "undecodable" {
		t.Fatalf("priced %d, dlq %d (%q); want 2 priced, the overflowing record in dlq as undecodable", priced, dlq, reason)
	}
}

// A clean stop stores what was buffered and what was already on the topic:
// nothing accepted upstream is left behind in Kafka. The batch triggers are
// set so that nothing is flushed before Shutdown.
func TestShutdownDrains(t *testing.T) {
	conn, db := migrated(t)
	ctx := context.Background()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, event.TopicPriced, event.TopicOutcomes, event.TopicDLQ, event.TopicAlerts))
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
	produce := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i <= to; i++ {
			e := pricedEvent(i)
			b := pricedValue(t, &e)
			recs = append(recs, &kgo.Record{Topic: event.TopicPriced, Key: e.Key(), Value: b})
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(1, 500)
	cfg := Config{BatchRows: MaxInsertBlockRows, BatchAge: time.Hour}
	cfg.ApplyDefaults()
	s, err := NewWithStore(cfg, NewStore(conn, db), testDeps(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "records buffered", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.bytes > 0
	})
	produce(501, 600) // the tail: on the topic, not yet fetched
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".priced_usage").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 600 {
		t.Fatalf("after a clean stop ClickHouse holds %d rows, want 600", n)
	}
}
