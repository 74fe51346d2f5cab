package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/contract"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// testPrices is the real pricing engine on testdata/catalogue.yaml:
// openai/gpt-4o at 2 USD per million input and 10 USD per million output
// tokens, USD→HKD 7.8, no price for "mystery-model", no EUR rate.
var testPrices = func() *pricing.Engine {
	e, err := pricing.Load(pricing.Config{Catalogues: []string{"testdata/catalogue.yaml"}, FX: "testdata/fx.csv"}, nil)
	if err != nil {
		panic(err)
	}
	return e
}()

var testTenants = func() *tenant.Registry {
	r, err := tenant.NewRegistry([]tenant.Config{
		{ID: "acme", ReportingCurrency: "HKD", TimeZone: "Asia/Hong_Kong"},
		{ID: "euroco", ReportingCurrency: "EUR", TimeZone: "UTC"},
	})
	if err != nil {
		panic(err)
	}
	return r
}()

func testKafkaConfig(brokers []string, prefix string) kafkax.Config {
	k := kafkax.Config{Brokers: brokers}
	if prefix != "" {
		k.Topics.Usage = prefix + event.TopicUsage
		k.Topics.Priced = prefix + event.TopicPriced
		k.Topics.Outcomes = prefix + event.TopicOutcomes
		k.Topics.DLQ = prefix + event.TopicDLQ
		k.Topics.Alerts = prefix + event.TopicAlerts
	}
	k.ApplyDefaults()
	return k
}

func testConfig(prefix string) Config {
	cfg := Config{
		Group:           prefix + "processor",
		TransactionalID: prefix + "processor-1",
		MaxBatch:        50,
		// Short, so a transaction the broker must time out (a fenced producer
		// cannot abort its own) does not stall the test for long.
		TransactionTimeout: 6 * time.Second,
	}
	cfg.Dedupe.Topic = prefix + "tokenmeter.processor-dedupe.v1"
	cfg.Attribution.Rules = nil
	cfg.ApplyDefaults()
	return cfg
}

func startProcessor(t *testing.T, cfg Config, k kafkax.Config, deps role.Deps) *Processor {
	t.Helper()
	deps.Kafka = k
	if deps.Logger == nil && os.Getenv("PROCESSOR_TEST_LOG") != "" {
		deps.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if deps.Tenants == nil {
		deps.Tenants = testTenants
	}
	p, err := New(cfg, testPrices, deps)
	if err != nil {
		t.Fatal(err)
	}
	fatal := make(chan error, 1)
	if err := p.Start(context.Background(), fatal); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
		select {
		case err := <-fatal:
			t.Errorf("fatal: %v", err)
		default:
		}
	})
	return p
}

func usageEvent(i int) event.UsageEvent {
	workflows := []string{"customer-support", "legal-research", "marketing-copy", ""}
	return event.UsageEvent{
		EventID:      fmt.Sprintf("ev-%05d", i),
		EventTime:    time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		Tenant:       "acme",
		Provider:     "openai",
		Model:        "gpt-4o",
		InputTokens:  int64(100 + i),
		OutputTokens: int64(10 + i%7),
		Workflow:     workflows[i%len(workflows)],
		Application:  "support-bot",
		TraceID:      fmt.Sprintf("trace-%d", i/3),
	}
}

func encode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func usageRecord(t testing.TB, k kafkax.Config, ev event.UsageEvent) *kgo.Record {
	return &kgo.Record{Topic: k.Topics.Usage, Key: ev.Key(), Value: encode(t, ev)}
}

func produce(t testing.TB, k kafkax.Config, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(k.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// waitProcessed waits until the group's committed offsets reach the end of
// the usage topic: then every usage record's outcome is committed.
func waitProcessed(t testing.TB, k kafkax.Config, group string) {
	t.Helper()
	cl, err := kgo.NewClient(k.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// A safety net against a hung test, not a timing assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for {
		ends, err := adm.ListEndOffsets(ctx, k.Topics.Usage)
		if err == nil {
			var commits kadm.OffsetResponses
			commits, err = adm.FetchOffsets(ctx, group)
			if err == nil {
				done := true
				ends.Each(func(o kadm.ListedOffset) {
					c, ok := commits.Lookup(o.Topic, o.Partition)
					if o.Offset > 0 && (!ok || c.At < o.Offset) {
						done = false
					}
				})
				if done {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("usage topic not fully processed by group %s: %v", group, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readCommitted returns every committed record of topic, read-committed,
// from the start to the last stable offset.
func readCommitted(t testing.TB, k kafkax.Config, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adminCl, err := kgo.NewClient(k.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(adminCl).ListCommittedOffsets(ctx, topic)
	adminCl.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset - 1
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(k.ClientOpts(),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (still waiting for %v)", topic, ctx.Err(), want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if last, ok := want[r.Partition]; ok && r.Offset >= last {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

func decodePriced(t testing.TB, recs []*kgo.Record) map[string][]event.PricedUsageEvent {
	t.Helper()
	out := map[string][]event.PricedUsageEvent{}
	for _, r := range recs {
		var p event.PricedUsageEvent
		if err := contract.DecodePriced(r.Value, &p); err != nil {
			t.Fatalf("priced record %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		if got, want := string(r.Key), p.Tenant+"/"+p.Workflow; got != want {
			t.Errorf("priced %s: key %q, want %q", p.EventID, got, want)
		}
		out[p.EventID] = append(out[p.EventID], p)
	}
	return out
}

func decodeDLQ(t testing.TB, recs []*kgo.Record) []event.DLQRecord {
	t.Helper()
	var out []event.DLQRecord
	for _, r := range recs {
		var d event.DLQRecord
		if err := json.Unmarshal(r.Value, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}
