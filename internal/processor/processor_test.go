package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tokenmeter/tokenmeter/internal/attribution"
	"github.com/tokenmeter/tokenmeter/internal/contract"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/ingest"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

func newCluster(t *testing.T) (*kfake.Cluster, kafkax.Config) {
	t.Helper()
	k := testKafkaConfig(nil, "")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, k.Topics.Usage, k.Topics.Priced, k.Topics.DLQ))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	k.Brokers = c.ListenAddrs()
	return c, k
}

func TestPricesAttributesAndRejects(t *testing.T) {
	_, k := newCluster(t)
	cfg := testConfig("")
	cfg.Attribution = attribution.Config{Rules: []attribution.Rule{{
		Name: "support-bot", When: map[string]attribution.Match{"application": {"support-bot"}},
		Set: attribution.Fields{Workflow: "customer-support", Team: "support"},
	}}}

	var recs []*kgo.Record
	const valid = 120
	for i := range valid {
		recs = append(recs, usageRecord(t, k, usageEvent(i)))
	}
	// Identical duplicates: the same bytes again, and the same event
	// re-encoded with the time in another zone (same instant): dropped.
	recs = append(recs, usageRecord(t, k, usageEvent(3)), usageRecord(t, k, usageEvent(7)))
	re := usageEvent(11)
	re.EventTime = re.EventTime.In(time.FixedZone("HKT", 8*3600))
	recs = append(recs, usageRecord(t, k, re))
	// The same event under another key (a producer that keys differently)
	// may land on another partition; this process owns all partitions and
	// still recognises it.
	rekeyed := usageRecord(t, k, usageEvent(9))
	rekeyed.Key = []byte("some-other-key")
	recs = append(recs, rekeyed)
	// Same id, different content, same key: duplicate_conflict.
	conflict := usageEvent(5)
	conflict.OutputTokens += 1000
	recs = append(recs, usageRecord(t, k, conflict))
	// Rejects.
	bad := func(key string, v []byte) *kgo.Record {
		return &kgo.Record{Topic: k.Topics.Usage, Key: []byte(key), Value: v}
	}
	recs = append(recs, bad("acme/x", []byte(`{"event_id": "broken`)))
	sub := usageEvent(1000)
	sub.ReasoningTokens = sub.OutputTokens + 1
	recs = append(recs, usageRecord(t, k, sub))
	unknown := usageEvent(1001)
	unknown.Model = "mystery-model"
	unknown2 := usageEvent(1002)
	unknown2.Model = "mystery-model"
	recs = append(recs, usageRecord(t, k, unknown), usageRecord(t, k, unknown2))
	stranger := usageEvent(1003)
	stranger.Tenant = "nobody"
	recs = append(recs, usageRecord(t, k, stranger))
	euro := usageEvent(1004)
	euro.Tenant = "euroco"
	recs = append(recs, usageRecord(t, k, euro))
	produce(t, k, recs...)

	reader := sdkmetric.NewManualReader()
	meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test")
	p := startProcessor(t, cfg, k, role.Deps{Meter: meter})
	waitProcessed(t, k, cfg.Group)
	if err := p.Ready(context.Background()); err != nil {
		t.Errorf("not ready after processing: %v", err)
	}

	priced := decodePriced(t, readCommitted(t, k, k.Topics.Priced))
	if len(priced) != valid {
		t.Errorf("priced %d distinct events, want %d", len(priced), valid)
	}
	for i := range valid {
		in := usageEvent(i)
		got := priced[in.EventID]
		if len(got) != 1 {
			t.Errorf("%s priced %d times, want once", in.EventID, len(got))
			continue
		}
		pe := got[0]
		// Workflow: the event's own wins over the non-override rule; an
		// event without one gets the rule's "customer-support".
		wantWF := in.Workflow
		if wantWF == "" {
			wantWF = "customer-support"
		}
		if pe.Workflow != wantWF || pe.Team != "support" || pe.TaskID != in.TraceID {
			t.Errorf("%s: workflow %q team %q task %q; want %q support %q", in.EventID, pe.Workflow, pe.Team, pe.TaskID, wantWF, in.TraceID)
		}
		// ev-00005 keeps its first content (output 10+5%7=15), not the conflict's.
		// cost = input × 0.000002 + output × 0.00001 USD (e.g. ev-00000:
		// 100×0.000002 + 10×0.00001 = 0.0003), × 7.8 in HKD.
		want := decimal.New(in.InputTokens*2+in.OutputTokens*10, -6)
		if !pe.EffectiveCost.Decimal().Equal(want) || !pe.BilledEffectiveCost.Decimal().Equal(want.Mul(decimal.RequireFromString("7.8"))) || pe.BillingCurrency != "HKD" {
			t.Errorf("%s: cost %s / %s %s, want %s USD", in.EventID, pe.EffectiveCost, pe.BilledEffectiveCost, pe.BillingCurrency, want)
		}
	}
	if pe := priced["ev-00005"]; len(pe) == 1 && pe[0].OutputTokens != 15 {
		t.Errorf("ev-00005 output tokens %d, want 15 (the first version)", pe[0].OutputTokens)
	}

	dlq := decodeDLQ(t, readCommitted(t, k, k.Topics.DLQ))
	reasons := map[string][]string{}
	for _, d := range dlq {
		reasons[d.Reason] = append(reasons[d.Reason], d.EventID)
		if d.Stage != "processor" || d.SourceTopic != k.Topics.Usage || len(d.Original) == 0 {
			t.Errorf("DLQ record lacks provenance: %+v", d)
		}
	}
	wantReasons := map[string][]string{
		"invalid_json":       {""},
		"invalid_field":      {"ev-01000"},
		"unknown_model":      {"ev-01001", "ev-01002"},
		"unknown_tenant":     {"ev-01003"},
		"fx_missing":         {"ev-01004"},
		"duplicate_conflict": {"ev-00005"},
	}
	for r, ids := range wantReasons {
		got := reasons[r]
		slices.Sort(got)
		if !slices.Equal(got, ids) {
			t.Errorf("DLQ %s: %v, want %v", r, got, ids)
		}
	}
	// 1 invalid_json + 1 invalid_field + 2 unknown_model + 1 unknown_tenant
	// + 1 fx_missing + 1 duplicate_conflict = 7.
	if len(dlq) != 7 {
		t.Errorf("DLQ has %d records, want 7: %v", len(dlq), reasons)
	}
	for _, d := range dlq {
		if d.Reason == "duplicate_conflict" {
			var orig event.UsageEvent
			if err := json.Unmarshal(d.Original, &orig); err != nil || orig.OutputTokens != conflict.OutputTokens {
				t.Errorf("conflict DLQ original is not the conflicting event: %s", d.Original)
			}
		}
	}

	// Metrics count committed outcomes: 120 priced, 4 duplicates, 7 DLQ.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				var labels []string
				for _, kv := range dp.Attributes.ToSlice() {
					labels = append(labels, string(kv.Key)+"="+kv.Value.AsString())
				}
				got[m.Name+"{"+strings.Join(labels, ",")+"}"] += dp.Value
			}
		}
	}
	for name, want := range map[string]int64{
		"tokenmeter.processor.events{outcome=priced}":                             120,
		"tokenmeter.processor.events{outcome=duplicate}":                          4,
		"tokenmeter.processor.events{outcome=dlq}":                                7,
		"tokenmeter.processor.dlq{reason=unknown_model}":                          2,
		"tokenmeter.processor.dlq{reason=duplicate_conflict}":                     1,
		"tokenmeter.processor.unknown_model{model=mystery-model,provider=openai}": 2,
	} {
		if got[name] != want {
			t.Errorf("metric %s = %d, want %d", name, got[name], want)
		}
	}
}

// faultCase injects one failure into the transactional loop.
type faultCase struct {
	name   string
	inject func(c *kfake.Cluster) (hits func() int)
}

// dropOnce closes the connection of the first request of key that pred accepts.
func dropOnce(key kmsg.Key, pred func(kmsg.Request) bool) func(c *kfake.Cluster) func() int {
	return func(c *kfake.Cluster) func() int {
		var hits int
		c.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
			if pred != nil && !pred(req) {
				c.KeepControl()
				return nil, nil, false
			}
			hits++
			return nil, errors.New("injected connection drop"), true
		})
		return func() int { return hits }
	}
}

func failOnce(key kmsg.Key, code *kerr.Error, topLevel bool, when func(kmsg.Request) bool) func(c *kfake.Cluster) func() int {
	return func(c *kfake.Cluster) func() int {
		h := c.Fault(kfake.Fault{Keys: []kmsg.Key{key}, Err: code, TopLevel: topLevel, When: when})
		return h.Hits
	}
}

func isCommit(req kmsg.Request) bool {
	r, ok := req.(*kmsg.EndTxnRequest)
	return ok && r.Commit
}

func TestTransactionalLoopSurvivesFaults(t *testing.T) {
	for _, fc := range []faultCase{
		{"EndTxn commit connection dropped", dropOnce(kmsg.EndTxn, isCommit)},
		{"EndTxn commit UNKNOWN_SERVER_ERROR", failOnce(kmsg.EndTxn, kerr.UnknownServerError, true, isCommit)},
		{"EndTxn commit PRODUCER_FENCED", failOnce(kmsg.EndTxn, kerr.ProducerFenced, true, isCommit)},
		{"Produce connection dropped", dropOnce(kmsg.Produce, nil)},
		{"Produce NOT_LEADER", failOnce(kmsg.Produce, kerr.NotLeaderForPartition, false, nil)},
		{"Produce INVALID_PRODUCER_EPOCH", failOnce(kmsg.Produce, kerr.InvalidProducerEpoch, false, nil)},
		{"TxnOffsetCommit connection dropped", dropOnce(kmsg.TxnOffsetCommit, nil)},
		{"TxnOffsetCommit ILLEGAL_GENERATION", failOnce(kmsg.TxnOffsetCommit, kerr.IllegalGeneration, false, nil)},
		{"TxnOffsetCommit UNKNOWN_SERVER_ERROR", failOnce(kmsg.TxnOffsetCommit, kerr.UnknownServerError, false, nil)},
	} {
		t.Run(fc.name, func(t *testing.T) {
			c, k := newCluster(t)
			const n = 300
			var recs []*kgo.Record
			for i := range n {
				recs = append(recs, usageRecord(t, k, usageEvent(i)))
			}
			produce(t, k, recs[:100]...)
			hits := fc.inject(c)
			cfg := testConfig("")
			startProcessor(t, cfg, k, role.Deps{})
			produce(t, k, recs[100:]...)
			waitProcessed(t, k, cfg.Group)
			if hits() == 0 {
				t.Fatalf("the fault was never injected")
			}
			priced := decodePriced(t, readCommitted(t, k, k.Topics.Priced))
			for i := range n {
				id := usageEvent(i).EventID
				if got := len(priced[id]); got != 1 {
					t.Errorf("%s priced %d times on read-committed priced.v1, want exactly once", id, got)
				}
			}
			if len(priced) != n {
				t.Errorf("priced %d distinct events, want %d", len(priced), n)
			}
			if dlq := readCommitted(t, k, k.Topics.DLQ); len(dlq) != 0 {
				t.Errorf("DLQ has %d records, want none: %s", len(dlq), dlq[0].Value)
			}
		})
	}
}

func TestDedupeSurvivesRestart(t *testing.T) {
	_, k := newCluster(t)
	cfg := testConfig("")
	var first []*kgo.Record
	for i := range 100 {
		first = append(first, usageRecord(t, k, usageEvent(i)))
	}
	produce(t, k, first...)
	p1, err := New(cfg, testPrices, role.Deps{Kafka: k, Tenants: testTenants})
	if err != nil {
		t.Fatal(err)
	}
	if err := p1.Start(context.Background(), make(chan error, 1)); err != nil {
		t.Fatal(err)
	}
	waitProcessed(t, k, cfg.Group)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p1.Shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}

	// A new process (empty memory) sees the same 100 events again, 20 new
	// ones and a changed copy of ev-00042.
	var second []*kgo.Record
	for i := 0; i < 120; i++ {
		second = append(second, usageRecord(t, k, usageEvent(i)))
	}
	changed := usageEvent(42)
	changed.InputTokens++
	second = append(second, usageRecord(t, k, changed))
	produce(t, k, second...)
	startProcessor(t, cfg, k, role.Deps{})
	waitProcessed(t, k, cfg.Group)

	priced := decodePriced(t, readCommitted(t, k, k.Topics.Priced))
	for i := range 120 {
		if got := len(priced[usageEvent(i).EventID]); got != 1 {
			t.Errorf("%s priced %d times, want once", usageEvent(i).EventID, got)
		}
	}
	if len(priced) != 120 {
		t.Errorf("%d distinct priced, want 120", len(priced))
	}
	dlq := decodeDLQ(t, readCommitted(t, k, k.Topics.DLQ))
	if len(dlq) != 1 || dlq[0].Reason != ReasonDuplicateConflict || dlq[0].EventID != "ev-00042" {
		t.Errorf("DLQ = %+v, want one duplicate_conflict for ev-00042", dlq)
	}
}

func TestDedupeWindowExpires(t *testing.T) {
	_, k := newCluster(t)
	cfg := testConfig("")
	cfg.Dedupe.Window = time.Hour
	produce(t, k, usageRecord(t, k, usageEvent(1)))
	p := startProcessor(t, cfg, k, role.Deps{})
	waitProcessed(t, k, cfg.Group)
	// Two hours later (processor clock) the same event is outside the
	// one-hour window and is priced again, as documented.
	p.mu.Lock()
	p.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	p.mu.Unlock()
	produce(t, k, usageRecord(t, k, usageEvent(1)))
	waitProcessed(t, k, cfg.Group)
	priced := decodePriced(t, readCommitted(t, k, k.Topics.Priced))
	if got := len(priced["ev-00001"]); got != 2 {
		t.Errorf("priced %d times, want 2 (the window expired)", got)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := Config{MaxBatch: -1, Dedupe: DedupeConfig{Window: time.Second}}
	cfg.Attribution.Rules = []attribution.Rule{{Name: ""}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"group: is required", "transactional_id: is required", "transaction_timeout:", "max_batch: must be at least 1",
		"dedupe.window: 1s is below 1m", "attribution.rules[0].name: is required", "attribution.rules[0].set: sets nothing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	var ok Config
	ok.ApplyDefaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	if ok.Dedupe.Window != 7*24*time.Hour {
		t.Errorf("default window %s", ok.Dedupe.Window)
	}
}

var _ = fmt.Sprintf

// TestExactlyOnceAcrossRebalances moves partitions between three processor
// instances while events and duplicates of earlier events keep coming: a
// process that takes over a partition rebuilds its dedupe memory from the
// dedupe topic, so duplicates of events its predecessor priced are dropped.
func TestExactlyOnceAcrossRebalances(t *testing.T) {
	_, k := newCluster(t)
	cfg := testConfig("")
	chunk := func(from, to, dupEvery int) []*kgo.Record {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, usageRecord(t, k, usageEvent(i)))
		}
		for i := 0; i < from; i += dupEvery {
			recs = append(recs, usageRecord(t, k, usageEvent(i)))
		}
		return recs
	}
	owns := func(p *Processor) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.owned) > 0
	}
	waitOwns := func(p *Processor) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute) // a safety net, not a timing assertion
		for !owns(p) {
			if time.Now().After(deadline) {
				t.Fatal("new member was never assigned a partition")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	instance := func(n int) Config {
		c := cfg
		c.TransactionalID = fmt.Sprintf("processor-%d", n)
		return c
	}

	produce(t, k, chunk(0, 200, 1)...)
	p1 := startProcessor(t, instance(1), k, role.Deps{})
	waitProcessed(t, k, cfg.Group)

	p2 := startProcessor(t, instance(2), k, role.Deps{})
	waitOwns(p2)
	produce(t, k, chunk(200, 400, 5)...)
	waitProcessed(t, k, cfg.Group)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	produce(t, k, chunk(400, 600, 3)...)
	waitProcessed(t, k, cfg.Group)

	p3 := startProcessor(t, instance(3), k, role.Deps{})
	waitOwns(p3)
	produce(t, k, chunk(600, 800, 2)...)
	waitProcessed(t, k, cfg.Group)

	priced := decodePriced(t, readCommitted(t, k, k.Topics.Priced))
	for i := range 800 {
		if got := len(priced[usageEvent(i).EventID]); got != 1 {
			t.Errorf("%s priced %d times, want once", usageEvent(i).EventID, got)
		}
	}
	if len(priced) != 800 {
		t.Errorf("%d distinct priced, want 800", len(priced))
	}
	if dlq := readCommitted(t, k, k.Topics.DLQ); len(dlq) != 0 {
		t.Errorf("DLQ has %d records: %s", len(dlq), dlq[0].Value)
	}
}

func TestWarnsWhenDedupeRetentionIsShorterThanWindow(t *testing.T) {
	_, k := newCluster(t)
	cfg := testConfig("")
	cl, err := kgo.NewClient(k.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	oneHour := "3600000"
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 3, 1, map[string]*string{"retention.ms": &oneHour}, cfg.Dedupe.Topic); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	startProcessor(t, cfg, k, role.Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "dedupe topic retention is shorter than processor.dedupe.window") {
		t.Errorf("no retention warning in:\n%s", logs.String())
	}
}

// An event whose priced record would be too large for the broker goes to the
// DLQ (original truncated) instead of failing its transaction forever. With
// the default limits its 930 KiB attribute is refused first
// (limits.max_string_bytes), with the event's id in the DLQ record.
func TestOversizedEventGoesToDLQ(t *testing.T) {
	_, k := newCluster(t)
	cfg := testConfig("")
	big := usageEvent(1)
	big.Attributes = map[string]string{"blob": strings.Repeat("x", 930<<10)}
	produce(t, k, usageRecord(t, k, usageEvent(0)), usageRecord(t, k, big), usageRecord(t, k, usageEvent(2)))
	startProcessor(t, cfg, k, role.Deps{})
	waitProcessed(t, k, cfg.Group)
	priced := decodePriced(t, readCommitted(t, k, k.Topics.Priced))
	if len(priced) != 2 || len(priced["ev-00000"]) != 1 || len(priced["ev-00002"]) != 1 {
		t.Errorf("priced %v, want ev-00000 and ev-00002 once each", priced)
	}
	dlq := decodeDLQ(t, readCommitted(t, k, k.Topics.DLQ))
	if len(dlq) != 1 {
		t.Fatalf("DLQ has %d records, want 1", len(dlq))
	}
	if dlq[0].Reason != ingest.ReasonInvalidField || dlq[0].EventID != "ev-00001" || !strings.Contains(dlq[0].Detail, "attributes.blob: is 952320 bytes, over limits.max_string_bytes (1024)") ||
		len(dlq[0].Original) != maxDLQOriginal || !strings.Contains(dlq[0].Detail, "original truncated") {
		t.Errorf("DLQ reason %q detail %q original %d bytes", dlq[0].Reason, dlq[0].Detail, len(dlq[0].Original))
	}
}

// Event ids are idempotency keys within a tenant: another tenant's event with
// the same id is a different event, priced on its own, not a duplicate or a
// conflict.
func TestSameEventIDInTwoTenantsIsTwoEvents(t *testing.T) {
	_, k := newCluster(t)
	cfg := testConfig("")
	tenants, err := tenant.NewRegistry([]tenant.Config{
		{ID: "acme", ReportingCurrency: "HKD", TimeZone: "UTC"},
		{ID: "globex", ReportingCurrency: "HKD", TimeZone: "UTC"},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := usageEvent(1)
	g := usageEvent(1)
	g.Tenant = "globex"
	produce(t, k, usageRecord(t, k, a), usageRecord(t, k, g), usageRecord(t, k, a))
	startProcessor(t, cfg, k, role.Deps{Tenants: tenants})
	waitProcessed(t, k, cfg.Group)

	recs := readCommitted(t, k, k.Topics.Priced)
	byTenant := map[string]int{}
	for _, r := range recs {
		var p event.PricedUsageEvent
		if err := contract.DecodePriced(r.Value, &p); err != nil {
			t.Fatal(err)
		}
		byTenant[p.Tenant]++
	}
	// acme's event twice (the second is a duplicate) and globex's once: one each.
	if byTenant["acme"] != 1 || byTenant["globex"] != 1 {
		t.Fatalf("priced per tenant %v, want acme 1 and globex 1", byTenant)
	}
	if dlq := decodeDLQ(t, readCommitted(t, k, k.Topics.DLQ)); len(dlq) != 0 {
		t.Fatalf("DLQ = %+v, want empty", dlq)
	}
}
