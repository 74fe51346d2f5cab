package processor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/tokenmeter/tokenmeter/internal/attribution"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/role"
)

// BenchmarkProcessEvent measures the processor's CPU per usage event outside
// Kafka: decode + validate, content hash + dedupe lookup, attribution (the
// demo rules and directory), pricing (the shipped catalogue, contracts and
// FX, billed in HKD), encoding the priced record and the dedupe record, and
// staging the event id. Each iteration is a distinct, new event.
// benchSetup is the demo pipeline's transformer and 8192 distinct usage
// records like the demo traffic.
func benchSetup(b *testing.B) (*transformer, [][]byte, time.Time) {
	b.Helper()
	raw, err := os.ReadFile("../../pipelines/demo.yaml")
	if err != nil {
		b.Fatal(err)
	}
	// The demo's pricing and processor sections (internal/app would be an import cycle).
	var cfg struct {
		Pricing   pricing.Config `yaml:"pricing"`
		Processor Config         `yaml:"processor"`
	}
	if err := yaml.Unmarshal([]byte(os.ExpandEnv(string(raw))), &cfg); err != nil {
		b.Fatal(err)
	}
	resolve := func(p string) string { return filepath.Join("../../pipelines", p) }
	prices, err := pricing.Load(cfg.Pricing, resolve)
	if err != nil {
		b.Fatal(err)
	}
	pc := cfg.Processor.Resolved(resolve)
	attr, err := attribution.Load(pc.Attribution)
	if err != nil {
		b.Fatal(err)
	}
	tr := &transformer{tenants: testTenants, prices: prices, attr: attr, limits: limits.Default()}

	const distinct = 8192
	values := make([][]byte, distinct)
	base := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	for i := range values {
		ev := event.UsageEvent{
			EventID:              fmt.Sprintf("0b7c1f9e-5d2a-4c1e-9a7b-%012d", i),
			EventTime:            base.Add(time.Duration(i) * time.Millisecond),
			Tenant:               "acme",
			Provider:             "anthropic",
			Model:                "claude-haiku-4-5",
			Operation:            "chat",
			InputTokens:          3100,
			CacheReadInputTokens: 2560,
			OutputTokens:         280,
			PromptTemplate:       "support-answer",
			PromptVersion:        "v3",
			UserID:               "agent-001",
			Application:          "support-copilot",
			Environment:          "prod",
			TraceID:              fmt.Sprintf("4bf92f3577b34da6a3ce929d0e0e%04d", i%10000),
			SpanID:               "00f067aa0ba902b7",
			ConversationID:       "conv-1234",
			Attributes:           map[string]string{"service.name": "support-copilot", "deployment.environment": "prod"},
		}
		values[i] = encode(b, ev)
	}
	return tr, values, base
}

func BenchmarkProcessEvent(b *testing.B) {
	tr, values, base := benchSetup(b)
	const distinct = 8192
	now := base.Add(time.Hour)
	seen := newSeenSet()
	seen.parts[0] = newPartSeen(0)
	var bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		if i%distinct == 0 {
			// A new round of the same ids: forget them so every event is new.
			seen = newSeenSet()
			seen.parts[0] = newPartSeen(0)
		}
		v := tr.transform(nil, values[i%distinct], now, seen)
		if v.kind != verdictPriced {
			b.Fatalf("event %d: %+v", i, v)
		}
		out, err := tr.encodePriced()
		if err != nil {
			b.Fatal(err)
		}
		key := tr.pricedKey()
		id := dedupeKey(tr.out.Tenant, tr.out.EventID)
		seen.stage(id, v.hash, 0)
		tr.dedupe.add(0, id, v.hash)
		bytes += int64(len(out) + len(key))
		i++
		if i%2000 == 0 { // a transaction of 2000 (the default max_batch): one dedupe record
			dv, err := appendDedupeBatch(nil, tr.dedupe.parts[0])
			if err != nil {
				b.Fatal(err)
			}
			bytes += int64(len(dv))
			tr.dedupe.reset()
			seen.commit(now.UnixMilli())
		}
	}
	// CPU time (user+system, this process, GC included) per event: on a
	// shared machine wall time per op also counts time spent waiting for a core.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(i), "cpu-ns/event")
	b.ReportMetric(float64(bytes)/float64(i), "out-bytes/event")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCalibrateSHA256 hashes 1 KiB: a yardstick for how fast this
// machine is right now (about 0.5–1.5 µs on an idle modern x86 core), so
// ProcessEvent numbers from a shared, loaded machine can be put in proportion.
func BenchmarkCalibrateSHA256(b *testing.B) {
	buf := make([]byte, 1024)
	b.SetBytes(int64(len(buf)))
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		sha256.Sum256(buf)
		n++
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(n), "cpu-ns/op")
}

// BenchmarkLoopKfake runs the whole transactional loop against an in-process
// kfake broker: b.N × 10 000 usage events are produced first, then one
// processor prices them (max_batch 2000) and the benchmark stops when the
// group's committed offsets reach the end. One op is 10 000 events (so
// -benchtime 5x prices 50 000); events/s and cpu-ns/event are reported,
// including the group join and the broker's work (which shares the CPU).
func BenchmarkLoopKfake(b *testing.B) {
	k := testKafkaConfig(nil, "")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, k.Topics.Usage, k.Topics.Priced, k.Topics.DLQ))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	k.Brokers = c.ListenAddrs()
	n := b.N * 10000
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		recs = append(recs, usageRecord(b, k, usageEvent(i)))
	}
	produce(b, k, recs...)
	cfg := testConfig("")
	cfg.MaxBatch = 2000
	p, err := New(cfg, testPrices, role.Deps{Kafka: k, Tenants: testTenants})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	if err := p.Start(context.Background(), make(chan error, 1)); err != nil {
		b.Fatal(err)
	}
	waitProcessed(b, k, cfg.Group)
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	_ = p.Shutdown(context.Background())
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/event")
}

// BenchmarkCompressPriced compresses one transaction's worth of priced
// records (2000, the default max_batch) with each codec franz-go offers, as
// the producer compresses a record batch: CPU per record and the ratio.
func BenchmarkCompressPriced(b *testing.B) {
	tr, values, base := benchSetup(b)
	seen := newSeenSet()
	seen.parts[0] = newPartSeen(0)
	var batch []byte
	for i := range 2000 {
		if v := tr.transform(nil, values[i], base.Add(time.Hour), seen); v.kind != verdictPriced {
			b.Fatalf("event %d: %+v", i, v)
		}
		out, err := tr.encodePriced()
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, out...)
	}
	for _, c := range []struct {
		name  string
		codec kgo.CompressionCodec
	}{{"snappy", kgo.SnappyCompression()}, {"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()}} {
		b.Run(c.name, func(b *testing.B) {
			comp, err := kgo.DefaultCompressor(c.codec)
			if err != nil {
				b.Fatal(err)
			}
			dec := kgo.DefaultDecompressor()
			var buf bytes.Buffer
			var n int
			for b.Loop() {
				buf.Reset()
				out, typ := comp.Compress(&buf, batch)
				n = len(out)
				if _, err := dec.Decompress(out, typ); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/record")
			b.ReportMetric(float64(len(batch))/float64(n), "ratio")
			b.ReportMetric(float64(n)/2000, "bytes/record")
		})
	}
}
