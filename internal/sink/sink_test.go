package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/contract"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/money"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// killStore lets inserts through until the kill-th one, which it performs
// and then reports as failed: the block is in ClickHouse but the sink never
// learns so, as when a process dies between sending an insert and reading
// the answer. From then on every call fails, as for a dead process.
type killStore struct {
	Store
	mu      sync.Mutex
	inserts int
	kill    int
	dead    chan struct{}
}

var errKilled = errors.New("killed")

func (k *killStore) Insert(ctx context.Context, tb TableBatch, token string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	select {
	case <-k.dead:
		return errKilled
	default:
	}
	k.inserts++
	err := k.Store.Insert(ctx, tb, token)
	if k.inserts == k.kill && err == nil {
		close(k.dead)
		return errKilled
	}
	return err
}

func (k *killStore) isDead() bool {
	select {
	case <-k.dead:
		return true
	default:
		return false
	}
}

func (k *killStore) Ledger(ctx context.Context, topic string) (map[int32]ledgerEntry, error) {
	if k.isDead() {
		return nil, errKilled
	}
	return k.Store.Ledger(ctx, topic)
}

func (k *killStore) WriteLedger(ctx context.Context, entries []ledgerEntry) error {
	if k.isDead() {
		return errKilled
	}
	return k.Store.WriteLedger(ctx, entries)
}

func migrated(t testing.TB) (driver.Conn, string) {
	t.Helper()
	conn, db := testenv.ClickHouse(t)
	cfg := chx.Config{Addr: testenv.ClickHouseAddr(t), Database: db}
	cfg.ApplyDefaults()
	if _, err := chx.Migrate(context.Background(), conn, cfg); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return conn, db
}

func testDeps(t testing.TB, brokers []string) role.Deps {
	t.Helper()
	reg, err := tenant.NewRegistry([]tenant.Config{{ID: "acme", ReportingCurrency: "HKD", TimeZone: "Asia/Hong_Kong"}})
	if err != nil {
		t.Fatal(err)
	}
	k := kafkax.Config{Brokers: brokers}
	k.ApplyDefaults()
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	return role.Deps{
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Kafka:   k,
		Tenants: reg,
	}
}

// pricedEvent i costs i µUSD effective and i*7.8 µHKD billed.
func pricedEvent(i int) event.PricedUsageEvent {
	wf := fmt.Sprintf("wf%d", i%5)
	// Spread over 2026-03-31 14:00 UTC .. : some rows are in March UTC but
	// April in Hong Kong, so runs split on both month keys.
	ts := time.Date(2026, 3, 31, 14, 0, 0, 0, time.UTC).Add(time.Duration(i) * 7 * time.Second)
	c := decimal.New(int64(i), -6)
	cost, billed := money.MustDecimal(c), money.MustDecimal(c.Mul(decimal.RequireFromString("7.8")))
	return event.PricedUsageEvent{
		UsageEvent: event.UsageEvent{
			EventID: fmt.Sprintf("ev-%05d", i), EventTime: ts, Tenant: "acme",
			Provider: "openai", Model: "gpt-4.1", InputTokens: 100, CacheReadInputTokens: 40, OutputTokens: 10,
			Workflow: wf, TraceID: fmt.Sprintf("trace-%d", i/3),
		},
		TaskID: fmt.Sprintf("trace-%d", i/3), PriceID: "openai/gpt-4.1/standard@2026-01-01",
		UncachedInputTokens: 60, NonReasoningOutTokens: 10,
		PricingCurrency: "USD", ListCost: cost, ContractedCost: cost, EffectiveCost: cost,
		BillingCurrency: "HKD", FXRate: money.MustDecimal(decimal.RequireFromString("7.8")), FXDate: "2026-03-31",
		BilledListCost: billed, BilledContractedCost: billed, BilledEffectiveCost: billed,
		LocalDate: ts.In(hkt).Format(time.DateOnly), TimeZone: "Asia/Hong_Kong",
	}
}

// TestExactlyOnceAcrossKill: a sink dies right after an insert landed but
// before it learned so (and with rows buffered); a second sink in the same
// group finishes the job. Every table and rollup holds each record once.
// On kfake here; TestExactlyOnceAcrossKillRealKafka runs the same on the
// real broker.
func TestExactlyOnceAcrossKill(t *testing.T) {
	topics := []string{event.TopicPriced, event.TopicOutcomes, event.TopicDLQ, event.TopicAlerts}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	deps := testDeps(t, cluster.ListenAddrs())
	exactlyOnceAcrossKill(t, deps)
}

func TestExactlyOnceAcrossKillRealKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	deps := testDeps(t, brokers)
	prefix := testenv.TopicPrefix(t)
	tc := &deps.Kafka.Topics
	tc.Priced, tc.Outcomes, tc.DLQ, tc.Alerts = prefix+"priced", prefix+"outcomes", prefix+"dlq", prefix+"alerts"
	tc.Partitions = 3
	deps.Kafka.ClientID = strings.TrimSuffix(prefix, ".")
	admin, err := kgo.NewClient(deps.Kafka.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := kafkax.EnsureTopics(context.Background(), admin, *tc, nil, tc.Priced, tc.Outcomes, tc.DLQ, tc.Alerts); err != nil {
		t.Fatal(err)
	}
	exactlyOnceAcrossKill(t, deps)
}

func exactlyOnceAcrossKill(t *testing.T, deps role.Deps) {
	conn, db := migrated(t)
	ctx := context.Background()
	brokers := deps.Kafka.Brokers
	tc := deps.Kafka.Topics

	const n = 3000
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.RecordRetries(10))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var recs []*kgo.Record
	for i := 1; i <= n; i++ {
		e := pricedEvent(i)
		b := pricedValue(t, &e)
		recs = append(recs, &kgo.Record{Topic: tc.Priced, Key: e.Key(), Value: b})
	}
	// One record that is not JSON: it must land in the dlq table once.
	recs = append(recs, &kgo.Record{Topic: tc.Priced, Key: []byte("acme/wf1"), Value: []byte("not json")})
	for i := 1; i <= 10; i++ {
		o := event.OutcomeEvent{OutcomeID: fmt.Sprintf("o-%d", i), EventTime: time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC),
			Tenant: "acme", Workflow: "wf1", OutcomeType: "ticket_resolved", Count: 2,
			Value: &event.Money{Amount: decimal.RequireFromString("10.5"), Currency: "HKD"}}
		b, _ := json.Marshal(o)
		recs = append(recs, &kgo.Record{Topic: tc.Outcomes, Key: o.Key(), Value: b})
	}
	al := event.Alert{AlertID: "b1/2026-04/threshold/80", Tenant: "acme", BudgetID: "b1", Period: "2026-04", Kind: "threshold",
		Threshold: decimal.NewFromInt(80), Spend: decimal.NewFromInt(81), Amount: decimal.NewFromInt(100), Currency: "HKD", Mode: "alert",
		Top: []event.Contributor{{Kind: "workflow", Name: "wf1", Spend: decimal.NewFromInt(50)}}, TriggeredAt: time.Now(), EventTime: time.Now()}
	b, _ := json.Marshal(al)
	recs = append(recs, &kgo.Record{Topic: tc.Alerts, Key: []byte("acme/b1"), Value: b})
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cfg := Config{BatchRows: 97, BatchAge: 20 * time.Millisecond, Group: deps.Kafka.ClientID + "-sink"}
	cfg.ApplyDefaults()
	real := NewStore(conn, db)

	// Sink 1 dies at its 7th insert, right after that insert landed.
	ks := &killStore{Store: real, kill: 7, dead: make(chan struct{})}
	s1, err := NewWithStore(cfg, ks, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ks.dead:
	case <-time.After(2 * time.Minute):
		t.Fatal("sink 1 never reached its 7th insert")
	}
	s1.kill()
	var afterKill uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".priced_usage").Scan(&afterKill); err != nil {
		t.Fatal(err)
	}
	if afterKill == 0 || afterKill >= n {
		t.Fatalf("after the kill ClickHouse holds %d priced rows; the test needs a partial load", afterKill)
	}

	// Sink 2, same group: resumes from ClickHouse.
	s2, err := NewWithStore(cfg, real, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown(context.Background())
	waitFor(t, conn, "SELECT (SELECT count() FROM "+db+".priced_usage) + (SELECT count() FROM "+db+".dlq) + (SELECT count() FROM "+db+".outcomes) + (SELECT count() FROM "+db+".alerts)", n+1+10+1)
	waitLedgerDone(t, conn, db)
	if err := s2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Expected, by hand: n = 3000 events costing i µUSD each:
	//   sum = 1e-6 * n(n+1)/2 = 1e-6 * 4501500 = 4.5015 USD
	//   billed at 7.8 = 35.1117 HKD; tokens 100 input, 40 cache read, 10 output each.
	wantCost := decimal.RequireFromString("4.5015")
	wantBilled := decimal.RequireFromString("35.1117")
	var rows, ids uint64
	var cost, billed decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id), sum(effective_cost), sum(billed_effective_cost) FROM "+db+".priced_usage").Scan(&rows, &ids, &cost, &billed); err != nil {
		t.Fatal(err)
	}
	if rows != n || ids != n || !cost.Equal(wantCost) || !billed.Equal(wantBilled) {
		t.Errorf("priced_usage: %d rows, %d ids, cost %s, billed %s; want %d, %d, %s, %s", rows, ids, cost, billed, n, n, wantCost, wantBilled)
	}
	for _, rollup := range []string{"usage_minute", "usage_hourly", "usage_daily"} {
		var calls, in, cached uint64
		var c, bc decimal.Decimal
		if err := conn.QueryRow(ctx, "SELECT sum(calls), sum(input_tokens), sum(cache_read_input_tokens), sum(effective_cost), sum(billed_effective_cost) FROM "+db+"."+rollup).Scan(&calls, &in, &cached, &c, &bc); err != nil {
			t.Fatal(err)
		}
		if calls != n || in != 100*n || cached != 40*n || !c.Equal(wantCost) || !bc.Equal(wantBilled) {
			t.Errorf("%s: calls %d, input %d, cached %d, cost %s, billed %s; want %d, %d, %d, %s, %s", rollup, calls, in, cached, c, bc, n, 100*n, 40*n, wantCost, wantBilled)
		}
	}
	// Tasks: trace-(i/3) for i in 1..3000 -> trace-0 .. trace-1000 = 1001 distinct.
	var tasks uint64
	if err := conn.QueryRow(ctx, "SELECT uniqMerge(tasks) FROM "+db+".usage_daily").Scan(&tasks); err != nil {
		t.Fatal(err)
	}
	if tasks < 990 || tasks > 1010 { // uniq is approximate (HyperLogLog-ish), within 1%
		t.Errorf("usage_daily tasks = %d, want about 1001", tasks)
	}
	var dlq, dlqOrig uint64
	if err := conn.QueryRow(ctx, "SELECT count(), countIf(original = 'not json' AND stage = 'sink' AND reason = 'undecodable') FROM "+db+".dlq").Scan(&dlq, &dlqOrig); err != nil {
		t.Fatal(err)
	}
	if dlq != 1 || dlqOrig != 1 {
		t.Errorf("dlq: %d rows (%d matching); want the one undecodable record once", dlq, dlqOrig)
	}
	// 10 outcome records of count 2 worth 10.5 HKD each.
	var orecs, outs uint64
	var val decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT sum(records), sum(outcomes), sum(value_billed) FROM "+db+".outcomes_daily").Scan(&orecs, &outs, &val); err != nil {
		t.Fatal(err)
	}
	if orecs != 10 || outs != 20 || !val.Equal(decimal.NewFromInt(105)) {
		t.Errorf("outcomes_daily: %d records, %d outcomes, value %s; want 10, 20, 105", orecs, outs, val)
	}
	checks, err := chx.Verify(ctx, conn, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if !c.OK {
			t.Errorf("verify: %s: %s", c.Name, c.Detail)
		}
	}
	var alerts uint64
	var top string
	if err := conn.QueryRow(ctx, "SELECT count(), any(top_names[1]) FROM "+db+".alerts").Scan(&alerts, &top); err != nil {
		t.Fatal(err)
	}
	if alerts != 1 || top != "wf1" {
		t.Errorf("alerts: %d rows, top %q; want 1, wf1", alerts, top)
	}
}

// waitFor polls query until it returns want (a count); it fails only after
// a generous deadline, so a slow machine slows the test but does not fail it.
func waitFor(t *testing.T, conn driver.Conn, query string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var got uint64
	for time.Now().Before(deadline) {
		if err := conn.QueryRow(context.Background(), query).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s = %d after 3 minutes, want %d", query, got, want)
}

var _ atomic.Bool

var hkt = func() *time.Location {
	l, err := time.LoadLocation("Asia/Hong_Kong")
	if err != nil {
		panic(err)
	}
	return l
}()

// pricedValue is e as the processor writes it on priced.v1.
func pricedValue(t testing.TB, e *event.PricedUsageEvent) []byte {
	t.Helper()
	var enc contract.Encoder
	b, err := enc.AppendPriced(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	return b

}

// waitLedgerDone waits until no ledger entry is pending: the sink finished
// every block it started, replays included.
func waitLedgerDone(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	waitFor(t, conn, "SELECT toUInt64(countIf(state = 'pending') = 0) FROM "+db+".sink_ledger FINAL", 1)
}
