package levers

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// An anomaly is published once: to the alerts topic in the budget alerts'
// shape, and not again once the sink has stored it.
func TestAnomalyPublishedOnce(t *testing.T) {
	conn, db, start := driftHistory(t)
	src := Source{Conn: conn, DB: db}
	ctx := context.Background()
	as, err := src.Anomalies(ctx, "acme", start.Truncate(24*time.Hour), start.AddDate(0, 0, 41), DetectConfig{})
	if err != nil || len(as) != 1 {
		t.Fatalf("%v %+v", err, as)
	}
	fresh, err := src.Unpublished(ctx, "acme", as)
	if err != nil || len(fresh) != 1 {
		t.Fatalf("unpublished: %v %d", err, len(fresh))
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, event.TopicAlerts))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(event.TopicAlerts), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	now := time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC)
	al := fresh[0].Alert(now)
	if err := Produce(ctx, cl, event.TopicAlerts, []event.Alert{al}); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fs := cl.PollFetches(fctx)
	if errs := fs.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	recs := fs.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	var got event.Alert
	if err := json.Unmarshal(recs[0].Value, &got); err != nil {
		t.Fatal(err)
	}
	if got.AlertID != "anomaly/acme/drift/tokens_per_call/2026-08-26" || got.Kind != KindAnomaly || got.BudgetID != "anomaly/drift/tokens_per_call" ||
		got.Period != "2026-08-26" || len(got.Top) != 3 || got.Top[2].Name != "new prompt version t@v2" || !got.Threshold.IsPositive() {
		t.Fatalf("alert %+v", got)
	}
	// The sink stores it; the next run finds nothing new.
	if err := conn.Exec(ctx, "INSERT INTO "+db+`.alerts (alert_id, tenant, budget_id, period, kind, mode, triggered_at, event_time, kafka_topic, kafka_partition, kafka_offset)
		VALUES (?, 'acme', ?, ?, 'anomaly', 'alert', now(), now(), 'alerts', 0, 0)`, got.AlertID, got.BudgetID, got.Period); err != nil {
		t.Fatal(err)
	}
	again, err := src.Unpublished(ctx, "acme", as)
	if err != nil || len(again) != 0 {
		t.Fatalf("published twice: %v %+v", err, again)
	}
}
