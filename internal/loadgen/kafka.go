package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// kafkaProducer writes canonical usage events straight to the usage topic,
// the way an application that already speaks Kafka does. acks=all: a
// record counts as accepted once every in-sync replica has it. Whether it is
// valid is decided later by the processor (invalid ones go to the DLQ).
type kafkaProducer struct {
	cl    *kgo.Client
	topic string
	sum   *Summary
	stats *PathStats
}

func newKafkaProducer(ctx context.Context, cfg *Config, sum *Summary) (*kafkaProducer, error) {
	// Ours come last so they win over the pipeline's (whose seeds may be empty
	// when it runs the embedded broker).
	opts := append(append([]kgo.Opt{}, cfg.KafkaOpts...),
		kgo.SeedBrokers(cfg.KafkaBrokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.NoCompression()),
		kgo.RecordDeliveryTimeout(cfg.RequestTimeout*time.Duration(cfg.MaxAttempts)),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka %v: %w", cfg.KafkaBrokers, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka %v is unreachable: %w", cfg.KafkaBrokers, err)
	}
	return &kafkaProducer{cl: cl, topic: cfg.KafkaTopic, sum: sum, stats: sum.path(PathKafka)}, nil
}

// flush produces a batch and waits for every acknowledgement.
func (k *kafkaProducer) flush(ctx context.Context, calls []*Call) {
	var wg sync.WaitGroup
	verdicts := make([]result, len(calls))
	var firstErr error
	var mu sync.Mutex
	for i, c := range calls {
		v, err := json.Marshal(&c.Event)
		if err != nil {
			verdicts[i] = result{failed: true}
			continue
		}
		wg.Add(1)
		k.cl.Produce(ctx, &kgo.Record{Topic: k.topic, Key: event.RecordKey(c.Event.Tenant, c.Event.Workflow), Value: v},
			func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					verdicts[i] = result{failed: true}
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				verdicts[i] = result{accepted: true}
			})
	}
	wg.Wait()
	errMsg := ""
	if firstErr != nil {
		errMsg = firstLine([]byte(firstErr.Error()))
	}
	k.sum.request(k.stats, 0, errMsg)
	for i, c := range calls {
		k.sum.usage(c, verdicts[i])
	}
}

func (k *kafkaProducer) close() { k.cl.Close() }
