package loadgen

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/ingest"
)

func TestRunProducesCanonicalEventsToTheUsageTopic(t *testing.T) {
	const topic = "lg.usage.v1"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	fc := newFakeCollector(t, "tok-3")
	srv := httptest.NewServer(fc)
	defer srv.Close()

	// 6000 calls/s for 1s plans ~2000 requests: enough for a few bad calls
	// and for the batch-tier marketing drafts that the job runner writes to Kafka.
	sum, err := Run(context.Background(), Config{
		Target: srv.URL, Token: "tok-3", Tenant: "acme", Rate: 6000, Duration: time.Second,
		Seed: 2, RunID: "kafkatest", Paths: []Path{PathHTTPJSON, PathKafka},
		KafkaBrokers: cluster.ListenAddrs(), KafkaTopic: topic,
	})
	if err != nil {
		t.Fatal(err)
	}
	ks := sum.Paths[PathKafka]
	if ks == nil || ks.Sent == 0 || ks.Accepted != ks.Sent {
		t.Fatalf("kafka path: %+v", ks)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got Totals
	var records, invalid int64
	for records < ks.Sent {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d of %d records: %v", records, ks.Sent, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			records++
			// The processor reads the topic with the same decoder.
			ev, err := ingest.DecodeUsage(r.Value, time.Now())
			if string(r.Key) != "acme/"+ev.Workflow {
				t.Errorf("record key %q for workflow %q", r.Key, ev.Workflow)
			}
			var ie *ingest.ItemError
			switch {
			case errors.As(err, &ie):
				invalid++
			case err != nil:
				t.Fatal(err)
			default:
				if ev.Workflow != WorkflowMarketing || ev.ServiceTier != event.ServiceTierBatch {
					t.Errorf("kafka carried %s/%s, want batch-tier marketing drafts only", ev.Workflow, ev.ServiceTier)
				}
				got.Add(&ev)
			}
		})
	}
	// Every bad call sent through Kafka is invalid there: the processor will DLQ it.
	var badViaKafka int64
	if b := sum.Bad[BadCacheExceedsInput]; b != nil && b.ByPath[PathKafka] != nil {
		bk := b.ByPath[PathKafka]
		if bk.AcceptedAtIngest != bk.Sent {
			t.Errorf("bad calls via kafka: %+v, want all acknowledged", *bk)
		}
		badViaKafka = bk.Sent
	}
	if invalid != badViaKafka || invalid == 0 {
		t.Errorf("%d invalid records on the topic, summary says %d bad calls went through Kafka", invalid, badViaKafka)
	}
	if got.Calls != ks.Sent-invalid {
		t.Errorf("%d valid records, %d sent minus %d bad", got.Calls, ks.Sent, invalid)
	}
}
