package processor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// TestExactlyOnceAcrossSIGKILL runs the processor as a separate OS process
// (the real tokenmeter binary, TOKENMETER_ROLES=processor) against the real
// Kafka broker, SIGKILLs it mid-stream several times while events (some sent
// twice) keep arriving, and then checks that read-committed priced.v1 holds
// every event exactly once.
func TestExactlyOnceAcrossSIGKILL(t *testing.T) {
	brokers := testenv.Kafka(t)
	if testing.Short() {
		t.Skip("-short")
	}
	prefix := testenv.TopicPrefix(t)
	k := testKafkaConfig(brokers, prefix)
	k.Topics.Partitions = 3
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	admin, err := kgo.NewClient(k.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := kafkax.EnsureTopics(ctx, admin, k.Topics, nil, k.Topics.All()...); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "tokenmeter")
	build := exec.Command("go", "build", "-o", bin, "github.com/tokenmeter/tokenmeter/cmd/tokenmeter")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build tokenmeter: %v\n%s", err, out)
	}
	for _, f := range []string{"catalogue.yaml", "fx.csv"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	group := prefix + "processor"
	cfgPath := filepath.Join(dir, "pipeline.yaml")
	cfg := fmt.Sprintf(`roles: [processor]
kafka:
  topics: {usage: %q, priced: %q, outcomes: %q, dlq: %q, alerts: %q, partitions: 3}
tenants:
  - {id: acme, reporting_currency: HKD, time_zone: Asia/Hong_Kong}
pricing:
  catalogues: [catalogue.yaml]
  fx: fx.csv
processor:
  group: %q
  transactional_id: %q
  instance_id: %q
  session_timeout: 10s
  transaction_timeout: 20s
  max_batch: 300
  dedupe: {topic: %q}
`, k.Topics.Usage, k.Topics.Priced, k.Topics.Outcomes, k.Topics.DLQ, k.Topics.Alerts,
		group, prefix+"processor-1", prefix+"processor-1", prefix+"dedupe")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	var logs strings.Builder
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", cfgPath)
		cmd.Env = append(os.Environ(), "TOKENMETER_ROLES=processor", "TOKENMETER_HTTP_LISTEN=127.0.0.1:0",
			"KAFKA_BROKERS="+strings.Join(brokers, ","), "TOKENMETER_LOG_LEVEL=warn")
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	adm := kadm.NewClient(admin)
	committed := func() int64 {
		var sum int64
		if offs, err := adm.FetchOffsets(ctx, group); err == nil {
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Err == nil {
					sum += o.At
				}
			})
		}
		return sum
	}

	// 20 000 events in 20 chunks; every 50th event is sent again in the next chunk.
	const n, chunks = 20000, 20
	produced := make(chan error, 1)
	go func() {
		cl, err := kgo.NewClient(k.ClientOpts()...)
		if err != nil {
			produced <- err
			return
		}
		defer cl.Close()
		for c := range chunks {
			var recs []*kgo.Record
			for i := c * n / chunks; i < (c+1)*n/chunks; i++ {
				recs = append(recs, usageRecord(t, k, usageEvent(i)))
				if j := i - n/chunks; j >= 0 && j%50 == 0 {
					recs = append(recs, usageRecord(t, k, usageEvent(j)))
				}
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				produced <- err
				return
			}
		}
		produced <- nil
	}()

	// Kill the processor each time it has committed more progress since it
	// started: it is then in the middle of the stream, usually mid-transaction.
	// Progress steps that are not multiples of the batch size, so kills land
	// at different points of a batch.
	steps := []int64{700, 1300, 2100, 900}
	kills := len(steps)
	for i, step := range steps {
		before := committed()
		cmd := start()
		for committed() < before+step {
			if ctx.Err() != nil {
				_ = cmd.Process.Kill()
				t.Fatalf("no progress before kill %d: %v\n%s", i+1, ctx.Err(), logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		t.Logf("kill %d: committed offsets %d → %d", i+1, before, committed())
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	cmd := start()
	waitProcessed(t, k, group)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("processor did not stop cleanly on SIGTERM: %v\n%s", err, logs.String())
	}

	priced := decodePriced(t, readCommitted(t, k, k.Topics.Priced))
	missing, dup := 0, 0
	for i := range n {
		switch got := len(priced[usageEvent(i).EventID]); {
		case got == 0:
			missing++
		case got > 1:
			dup++
		}
	}
	if missing > 0 || dup > 0 || len(priced) != n {
		t.Fatalf("after %d SIGKILLs: %d events missing, %d priced more than once, %d distinct (want %d)\n%s",
			kills, missing, dup, len(priced), n, logs.String())
	}
	if dlq := readCommitted(t, k, k.Topics.DLQ); len(dlq) != 0 {
		t.Errorf("DLQ has %d records: %s", len(dlq), dlq[0].Value)
	}
	t.Logf("%d events priced exactly once across %d SIGKILLs", n, kills)
}
