package loadgen

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/collector"
	"github.com/tokenmeter/tokenmeter/internal/ingest"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/telemetry"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// TestRunAgainstTheRealCollector plays traffic through every path into the
// real collector role (HTTP API and both OTLP receivers) and straight into
// Kafka, on a kfake broker, and checks the topics hold exactly what the
// summary says was accepted.
func TestRunAgainstTheRealCollector(t *testing.T) {
	var kcfg kafkax.Config
	kcfg.ApplyDefaults()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, kcfg.Topics.Usage, kcfg.Topics.Outcomes))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	kcfg.Brokers = cluster.ListenAddrs()

	reg, err := tenant.NewRegistry([]tenant.Config{{ID: "acme", TimeZone: "UTC", TokenSHA256: []string{tenant.HashToken("tok-5")}}})
	if err != nil {
		t.Fatal(err)
	}
	local := "127.0.0.1:0"
	var ccfg collector.Config
	ccfg.OTLP.GRPCListen, ccfg.OTLP.HTTPListen = &local, &local
	ccfg.ApplyDefaults()
	tel := telemetry.Discard()
	mux := http.NewServeMux()
	col, err := collector.New(ccfg, role.Deps{Logger: tel.Logger, Meter: tel.Meter, MeterProvider: tel.MeterProvider,
		Kafka: kcfg, Tenants: reg, Mux: mux})
	if err != nil {
		t.Fatal(err)
	}
	if err := col.Start(context.Background(), make(chan error, 4)); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = col.Shutdown(ctx)
	}()
	mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	sum, err := Run(context.Background(), Config{
		Target: srv.URL, OTLPHTTP: col.OTLPHTTPAddr, OTLPGRPC: col.OTLPGRPCAddr, KafkaBrokers: kcfg.Brokers,
		KafkaTopic: kcfg.Topics.Usage, Token: "tok-5", Tenant: "acme", Rate: 3000, Duration: time.Second,
		Seed: 4, RunID: "realcollector", BatchSize: 50,
	})
	if err != nil {
		t.Fatal(err)
	}
	var accepted int64
	for _, p := range AllPaths {
		ps := sum.Paths[p]
		if ps == nil || ps.Sent == 0 {
			t.Fatalf("path %s sent nothing", p)
		}
		if ps.Failed != 0 {
			t.Errorf("path %s: %d failed (%v)", p, ps.Failed, ps.Errors)
		}
		accepted += ps.Accepted
	}
	if sum.GoodFailed() != 0 {
		t.Errorf("%d good items not accepted", sum.GoodFailed())
	}
	// The inconsistent calls sent over HTTP and OTLP were rejected by the collector.
	for p, b := range sum.Bad[BadCacheExceedsInput].ByPath {
		if p != PathKafka && b.RejectedAtIngest != b.Sent {
			t.Errorf("cache-exceeds-input via %s: %+v", p, *b)
		}
	}

	records := consumeN(t, kcfg.Brokers, kcfg.Topics.Usage, accepted)
	got := map[string]*Totals{}
	var invalid, unknown int64
	for _, r := range records {
		ev, err := ingest.DecodeUsage(r.Value, time.Now())
		var ie *ingest.ItemError
		switch {
		case errors.As(err, &ie):
			invalid++ // only the Kafka path can carry these past ingest
			continue
		case err != nil:
			t.Fatal(err)
		case ev.Model == ModelUnknown.Name:
			unknown++
			continue
		}
		if ev.Tenant != "acme" || string(r.Key) != "acme/"+ev.Workflow {
			t.Errorf("record key %q tenant %q", r.Key, ev.Tenant)
		}
		if got[ev.Workflow] == nil {
			got[ev.Workflow] = &Totals{}
		}
		got[ev.Workflow].Add(&ev)
	}
	if want := sum.Bad[BadCacheExceedsInput].ByPath[PathKafka]; want == nil || invalid != want.Sent {
		t.Errorf("%d invalid records on the topic, bad calls via kafka: %+v", invalid, want)
	}
	if unknown != sum.Bad[BadUnknownModel].AcceptedAtIngest {
		t.Errorf("%d unknown-model records, summary accepted %d", unknown, sum.Bad[BadUnknownModel].AcceptedAtIngest)
	}
	for _, wf := range Workflows {
		if got[wf] == nil || *got[wf] != *sum.Expected[wf] {
			t.Errorf("workflow %s: topic holds %+v, summary expects %+v", wf, got[wf], *sum.Expected[wf])
		}
	}
	outcomes := consumeN(t, kcfg.Brokers, kcfg.Topics.Outcomes, sum.Outcomes.Accepted)
	for _, r := range outcomes {
		if _, err := ingest.DecodeOutcome(r.Value, time.Now()); err != nil {
			t.Fatalf("outcome record: %v", err)
		}
	}
}

// consumeN reads exactly n records from topic, then checks nothing follows.
func consumeN(t *testing.T, brokers []string, topic string, n int64) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for int64(len(out)) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: %d records, want %d", topic, len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	cl.PollFetches(ctx2).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	if int64(len(out)) != n {
		t.Fatalf("topic %s: %d records, want exactly %d", topic, len(out), n)
	}
	return out
}
