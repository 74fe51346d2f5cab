package sink

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// metrics are the sink's instruments; all nil without a Meter.
type metrics struct {
	rows     metric.Int64Counter
	inserts  metric.Int64Counter
	errors   metric.Int64Counter
	latency  metric.Float64Histogram
	replayed metric.Int64Counter
	dlq      metric.Int64Counter
	dupOut   metric.Int64Counter
	stopped  metric.Int64Counter
}

func (s *Sink) initMetrics() error {
	m := s.deps.Meter
	if m == nil {
		return nil
	}
	var err error
	var errs []error
	s.m.rows, err = m.Int64Counter("tokenmeter.sink.rows", metric.WithDescription("rows inserted into ClickHouse, by table"))
	errs = append(errs, err)
	s.m.inserts, err = m.Int64Counter("tokenmeter.sink.inserts", metric.WithDescription("insert blocks sent to ClickHouse, by table"))
	errs = append(errs, err)
	s.m.errors, err = m.Int64Counter("tokenmeter.sink.insert_errors", metric.WithDescription("failed ClickHouse inserts, ledger writes or reads (retried)"))
	errs = append(errs, err)
	s.m.replayed, err = m.Int64Counter("tokenmeter.sink.replayed_blocks", metric.WithDescription("blocks the ledger showed pending on assignment and that were inserted again with their original deduplication token"))
	errs = append(errs, err)
	s.m.dlq, err = m.Int64Counter("tokenmeter.sink.dlq_rows", metric.WithDescription("records the sink itself rejected into the dlq table, by reason (undecodable, unstorable)"))
	errs = append(errs, err)
	s.m.dupOut, err = m.Int64Counter("tokenmeter.sink.duplicate_outcomes", metric.WithDescription("outcome records skipped because an outcome with the same tenant and outcome_id is already stored or buffered for the partition"))
	errs = append(errs, err)
	s.m.stopped, err = m.Int64Counter("tokenmeter.sink.stopped_partitions", metric.WithDescription("partitions the sink stopped because the Kafka log no longer matches what ClickHouse holds (see `tokenmeter sink reset-offsets`)"))
	errs = append(errs, err)
	s.m.latency, err = m.Float64Histogram("tokenmeter.sink.insert_duration", metric.WithUnit("s"), metric.WithDescription("duration of one table insert of a block"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	errs = append(errs, err)
	return errors.Join(errs...)
}

func add(c metric.Int64Counter, n int64, attrs ...attribute.KeyValue) {
	if c != nil {
		c.Add(context.Background(), n, metric.WithAttributes(attrs...))
	}
}

// countDLQ counts a record the sink itself turned into a dlq row (DESIGN.md
// invariant 6: every rejection is counted). A record whose block is
// replayed after a crash may be counted twice; the table holds it once.
func (s *Sink) countDLQ(reason string) { add(s.m.dlq, 1, attribute.String("reason", reason)) }

func (s *Sink) recordInsert(table string, rows int, seconds float64) {
	a := attribute.String("table", table)
	add(s.m.rows, int64(rows), a)
	add(s.m.inserts, 1, a)
	if s.m.latency != nil {
		s.m.latency.Record(context.Background(), seconds, metric.WithAttributes(a))
	}
}
