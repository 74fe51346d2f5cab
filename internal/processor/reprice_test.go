package processor

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/role"
)

func TestRepriceReplaysUnknownModelsOnce(t *testing.T) {
	_, k := newCluster(t)
	cfg := testConfig("")
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, usageRecord(t, k, usageEvent(i)))
	}
	for i := 100; i < 103; i++ {
		ev := usageEvent(i)
		ev.Model = "mystery-model"
		recs = append(recs, usageRecord(t, k, ev))
	}
	bad := usageEvent(200)
	bad.ReasoningTokens = bad.OutputTokens + 1
	recs = append(recs, usageRecord(t, k, bad))
	produce(t, k, recs...)

	// First run: the catalogue has no mystery-model.
	p1, err := New(cfg, testPrices, role.Deps{Kafka: k, Tenants: testTenants})
	if err != nil {
		t.Fatal(err)
	}
	if err := p1.Start(context.Background(), make(chan error, 1)); err != nil {
		t.Fatal(err)
	}
	waitProcessed(t, k, cfg.Group)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p1.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if got := len(readCommitted(t, k, k.Topics.DLQ)); got != 4 {
		t.Fatalf("DLQ has %d records, want 4 (3 unknown_model + 1 invalid_field)", got)
	}

	ctx := context.Background()
	// A range that holds nothing replays nothing.
	res, err := Reprice(ctx, k, RepriceOptions{Since: time.Now().Add(time.Hour)}, nil)
	if err != nil || res.Replayed != 0 {
		t.Fatalf("future --since: %+v, %v", res, err)
	}
	// Dry run counts without producing.
	res, err = Reprice(ctx, k, RepriceOptions{DryRun: true}, nil)
	if err != nil || res.Replayed != 3 || res.Scanned != 4 {
		t.Fatalf("dry run: %+v, %v; want 3 of 4 scanned", res, err)
	}

	// The catalogue is fixed; the processor restarts with it.
	fixed, err := pricing.Load(pricing.Config{Catalogues: []string{"testdata/catalogue.yaml", "testdata/catalogue_fix.yaml"}, FX: "testdata/fx.csv"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := New(cfg, fixed, role.Deps{Kafka: k, Tenants: testTenants})
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.Start(ctx, make(chan error, 1)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p2.Shutdown(context.Background()) })

	// Replay twice: the second replay is dropped as identical duplicates.
	for run := 1; run <= 2; run++ {
		res, err := Reprice(ctx, k, RepriceOptions{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Replayed != 3 || res.ByReason[pricing.ReasonUnknownModel] != 3 {
			t.Fatalf("run %d: %+v, want 3 unknown_model replayed", run, res)
		}
		waitProcessed(t, k, cfg.Group)
	}
	priced := decodePriced(t, readCommitted(t, k, k.Topics.Priced))
	if len(priced) != 13 {
		t.Errorf("%d distinct events priced, want 13", len(priced))
	}
	for i := 100; i < 103; i++ {
		ev := usageEvent(i)
		got := priced[ev.EventID]
		if len(got) != 1 {
			t.Errorf("%s priced %d times, want once", ev.EventID, len(got))
			continue
		}
		// 1 USD/M input, 4 USD/M output: e.g. ev-00100: 200×0.000001 + 12×0.000004 = 0.000248.
		want := decimal.New(ev.InputTokens*1+ev.OutputTokens*4, -6)
		if !got[0].ListCost.Decimal().Equal(want) {
			t.Errorf("%s list cost %s, want %s", ev.EventID, got[0].ListCost, want)
		}
	}
	if got := len(readCommitted(t, k, k.Topics.DLQ)); got != 4 {
		t.Errorf("DLQ has %d records after the replays, want still 4", got)
	}
}

func TestParseOffsets(t *testing.T) {
	got, err := ParseOffsets("0:10-20, 2:5-")
	if err != nil || got[0] != (OffsetRange{10, 20}) || got[2] != (OffsetRange{5, -1}) || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "x:1-2", "0:5-3", "0:1-2,0:3-4", "0-1", "0:-5"} {
		if _, err := ParseOffsets(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
