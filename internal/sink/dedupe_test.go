package sink

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// TestOutcomeDuplicatesSkipped: a client re-sends the same outcome (as after
// a 503 following a partial acknowledgement). The first copy is stored, the
// others are skipped whether the first is still buffered or already in
// ClickHouse, also with different content, and also after the sink is killed
// and a new one rebuilds its set from ClickHouse (including re-reading a
// skipped record that trails the last stored offset).
func TestOutcomeDuplicatesSkipped(t *testing.T) {
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
	now := time.Now().UTC().Truncate(time.Second)
	outcome := func(id string, count int64) *kgo.Record {
		o := event.OutcomeEvent{OutcomeID: id, EventTime: now, Tenant: "acme", Workflow: "wf1", OutcomeType: "ticket_resolved", Count: count,
			Value: &event.Money{Amount: decimal.RequireFromString("10.5"), Currency: "HKD"}}
		b, _ := json.Marshal(o)
		// Same key: same partition, in this order.
		return &kgo.Record{Topic: event.TopicOutcomes, Key: o.Key(), Value: b}
	}
	produce := func(recs ...*kgo.Record) {
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	count := func(q string) uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	cfg := Config{BatchRows: 50, BatchAge: 10 * time.Millisecond, RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond}
	cfg.ApplyDefaults()
	deps := testDeps(t, brokers)
	s1, err := NewWithStore(cfg, NewStore(conn, db), deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// Two copies in one produce: the second meets the first in the buffer.
	produce(outcome("A", 2), outcome("A", 2))
	waitFor(t, conn, "SELECT count() FROM "+db+".outcomes WHERE outcome_id = 'A'", 1)
	// A copy with different content after the first is stored, then B, then
	// one more copy that trails the last stored offset.
	produce(outcome("A", 5), outcome("B", 3), outcome("A", 2))
	waitFor(t, conn, "SELECT count() FROM "+db+".outcomes WHERE outcome_id = 'B'", 1)
	s1.kill()

	// Sink 2 resumes from ClickHouse (right after B), re-reads the trailing
	// copy, and gets one more copy plus a new outcome C.
	s2, err := NewWithStore(cfg, NewStore(conn, db), deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown(context.Background())
	produce(outcome("A", 2), outcome("C", 1))
	waitFor(t, conn, "SELECT count() FROM "+db+".outcomes WHERE outcome_id = 'C'", 1)
	if err := s2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// By hand: A (count 2, the first copy), B (3), C (1): 3 rows, 6 outcomes,
	// 3 * 10.5 = 31.5 HKD of value. Without dedupe: 7 rows.
	if n := count("SELECT count() FROM " + db + ".outcomes"); n != 3 {
		t.Errorf("outcomes: %d rows, want 3", n)
	}
	if n := count("SELECT count() FROM " + db + ".outcomes WHERE outcome_id = 'A' AND count = 2"); n != 1 {
		t.Errorf("outcome A: %d rows with the first copy's count 2, want 1", n)
	}
	var recs, outs uint64
	var val decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT sum(records), sum(outcomes), sum(value_billed) FROM "+db+".outcomes_daily").Scan(&recs, &outs, &val); err != nil {
		t.Fatal(err)
	}
	if recs != 3 || outs != 6 || !val.Equal(decimal.RequireFromString("31.5")) {
		t.Errorf("outcomes_daily: %d records, %d outcomes, value %s; want 3, 6, 31.5", recs, outs, val)
	}
}

func TestOutcomeDedupeWindowValidated(t *testing.T) {
	c := Config{}
	c.ApplyDefaults()
	if c.OutcomeDedupeWindow != 168*time.Hour {
		t.Errorf("default outcome_dedupe_window = %s, want 168h", c.OutcomeDedupeWindow)
	}
	c.OutcomeDedupeWindow = -time.Hour
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "outcome_dedupe_window") {
		t.Errorf("Validate with a negative window: %v, want an outcome_dedupe_window error", err)
	}
}
