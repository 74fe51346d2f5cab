package sink

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// BenchmarkInsertPriced measures ClickHouse's insert rate into the real
// schema: priced_usage with its materialized views (minute, hour and day
// rollups and the offset ledger), one 20 000-row block per insert, rows
// decoded from JSON beforehand. Reports rows/s.
func BenchmarkInsertPriced(b *testing.B) {
	conn, db := migrated(b)
	if os.Getenv("TOKENMETER_BENCH_NO_ROLLUPS") == "1" {
		// For comparison: the raw table and offset ledger alone.
		for _, mv := range []string{"mv_usage_minute", "mv_usage_hourly", "mv_usage_daily"} {
			if err := conn.Exec(context.Background(), "DROP TABLE "+db+"."+mv); err != nil {
				b.Fatal(err)
			}
		}
	}
	store := NewStore(conn, db)
	reg, _ := tenant.NewRegistry([]tenant.Config{{ID: "acme", ReportingCurrency: "HKD", TimeZone: "Asia/Hong_Kong"}})
	z := &zoner{tenants: reg}
	const batch = 20_000
	rows := make([][]any, batch)
	for i := range rows {
		e := pricedEvent(i + 1)
		e.Model = fmt.Sprintf("model-%d", i%7)
		raw := pricedValue(b, &e)
		vals, _, err := decodePriced(z, raw)
		if err != nil {
			b.Fatal(err)
		}
		rows[i] = append(vals, "priced", int32(0), int64(0))
	}
	cols := append(append([]string{}, pricedTable.columns...), kafkaColumns...)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for j := range rows {
			rows[j][len(rows[j])-1] = int64(i*batch + j)
		}
		if err := store.Insert(ctx, TableBatch{Table: "priced_usage", Columns: cols, Rows: rows}, fmt.Sprintf("bench-%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkSinkFromKafka measures the whole sink: 100 000 priced events
// already on an in-process broker (kfake, 6 partitions) consumed,
// decoded, batched and inserted until ClickHouse holds all of them.
// Reports events/s.
func BenchmarkSinkFromKafka(b *testing.B) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		conn, db := migrated(b)
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, event.TopicPriced, event.TopicOutcomes, event.TopicDLQ, event.TopicAlerts))
		if err != nil {
			b.Fatal(err)
		}
		brokers := cluster.ListenAddrs()
		prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(1<<20))
		if err != nil {
			b.Fatal(err)
		}
		recs := make([]*kgo.Record, 0, n)
		for j := 1; j <= n; j++ {
			e := pricedEvent(j)
			e.Workflow = fmt.Sprintf("wf%d", j%12)
			raw := pricedValue(b, &e)
			recs = append(recs, &kgo.Record{Topic: event.TopicPriced, Key: e.Key(), Value: raw})
		}
		if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		prod.Close()
		cfg := Config{}
		cfg.ApplyDefaults()
		s, err := NewWithStore(cfg, NewStore(conn, db), testDeps(b, brokers))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := s.Start(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
		for {
			var got uint64
			if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".priced_usage").Scan(&got); err != nil {
				b.Fatal(err)
			}
			if got >= n {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		_ = s.Shutdown(context.Background())
		cluster.Close()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		b.StartTimer()
	}
}
