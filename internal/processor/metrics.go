package processor

import (
	"context"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

type kafkaTopics = kafkax.TopicsConfig

// metrics are the processor's counters on /metrics. Outcomes are counted when
// their transaction commits, so an aborted and re-processed batch is not
// counted twice.
type metrics struct {
	events          metric.Int64Counter // tokenmeter_processor_events_total{outcome}
	rejected        metric.Int64Counter // tokenmeter_processor_dlq_total{reason}
	unknownModels   metric.Int64Counter // tokenmeter_processor_unknown_model_total{provider,model}
	txns            metric.Int64Counter // tokenmeter_processor_transactions_total{result}
	sessionRestarts metric.Int64Counter // tokenmeter_processor_session_restarts_total
	fxStale         metric.Int64Counter // tokenmeter_processor_fx_stale_total

	priced, duplicate, dlq metric.AddOption
	committed, aborted     metric.AddOption

	// modelLabels are the (provider, model) pairs already used as labels of
	// unknownModels: names come from input, so their number is capped
	// (maxModelLabels) and each is cut to maxLabelBytes; the rest are counted
	// under provider="other", model="other" (the DLQ keeps every name).
	mu          sync.Mutex
	modelLabels map[[2]string]struct{}
}

// Label bounds for names that come from input.
const (
	maxModelLabels = 100
	maxLabelBytes  = 64
)

// modelLabel returns the label pair to count an unknown model under.
func (m *metrics) modelLabel(pm [2]string) [2]string {
	for i, s := range pm {
		if len(s) > maxLabelBytes {
			pm[i] = strings.ToValidUTF8(s[:maxLabelBytes], "")
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.modelLabels[pm]; ok {
		return pm
	}
	if len(m.modelLabels) >= maxModelLabels {
		return [2]string{"other", "other"}
	}
	if m.modelLabels == nil {
		m.modelLabels = map[[2]string]struct{}{}
	}
	m.modelLabels[pm] = struct{}{}
	return pm
}

func newMetrics(m metric.Meter) (*metrics, error) {
	if m == nil {
		m = noop.NewMeterProvider().Meter("processor")
	}
	var (
		out  metrics
		errs [6]error
	)
	out.events, errs[0] = m.Int64Counter("tokenmeter.processor.events",
		metric.WithDescription("Usage records processed, by outcome (priced, duplicate, dlq); counted when their transaction commits."))
	out.rejected, errs[1] = m.Int64Counter("tokenmeter.processor.dlq",
		metric.WithDescription("Usage records sent to the DLQ, by reason."))
	out.unknownModels, errs[2] = m.Int64Counter("tokenmeter.processor.unknown_model",
		metric.WithDescription("Usage records with no price in force, by provider and model."))
	out.txns, errs[3] = m.Int64Counter("tokenmeter.processor.transactions",
		metric.WithDescription("Processor transactions, by result (committed, aborted)."))
	out.sessionRestarts, errs[4] = m.Int64Counter("tokenmeter.processor.session_restarts",
		metric.WithDescription("Transactional sessions restarted after a failure."))
	out.fxStale, errs[5] = m.Int64Counter("tokenmeter.processor.fx_stale",
		metric.WithDescription("Usage records priced with an FX rate older than pricing.fx_max_age (flagged fx_stale); counted when their transaction commits."))
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	opt := func(k, v string) metric.AddOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String(k, v)))
	}
	out.priced, out.duplicate, out.dlq = opt("outcome", "priced"), opt("outcome", "duplicate"), opt("outcome", "dlq")
	out.committed, out.aborted = opt("result", "committed"), opt("result", "aborted")
	return &out, nil
}

func (m *metrics) transactions(committed bool) {
	if committed {
		m.txns.Add(context.Background(), 1, m.committed)
	} else {
		m.txns.Add(context.Background(), 1, m.aborted)
	}
}

func (m *metrics) record(t *tally) {
	ctx := context.Background()
	if t.priced > 0 {
		m.events.Add(ctx, int64(t.priced), m.priced)
	}
	if t.fxStale > 0 {
		m.fxStale.Add(ctx, int64(t.fxStale))
	}
	if t.duplicates > 0 {
		m.events.Add(ctx, int64(t.duplicates), m.duplicate)
	}
	total := 0
	for reason, n := range t.reasons {
		total += n
		m.rejected.Add(ctx, int64(n), metric.WithAttributes(attribute.String("reason", reason)))
	}
	if total > 0 {
		m.events.Add(ctx, int64(total), m.dlq)
	}
	for pm, n := range t.unknown {
		pm = m.modelLabel(pm)
		m.unknownModels.Add(ctx, int64(n), metric.WithAttributes(attribute.String("provider", pm[0]), attribute.String("model", pm[1])))
	}
}

// tally counts one transaction's outcomes and collects its produce errors.
type tally struct {
	priced, duplicates int
	fxStale            int    // priced with an FX rate older than pricing.fx_max_age
	fxStaleDate        string // the last such rate's date
	reasons            map[string]int
	unknown            map[[2]string]int

	mu  sync.Mutex
	err error
}

func (t *tally) reset() {
	t.priced, t.duplicates, t.fxStale, t.fxStaleDate = 0, 0, 0, ""
	if t.reasons == nil {
		t.reasons, t.unknown = map[string]int{}, map[[2]string]int{}
	}
	clear(t.reasons)
	clear(t.unknown)
	t.mu.Lock()
	t.err = nil
	t.mu.Unlock()
}

func (t *tally) reject(reason, provider, model string) {
	t.reasons[reason]++
	if reason == pricing.ReasonUnknownModel {
		t.unknown[[2]string{provider, model}]++
	}
}

// promise is the produce callback; it runs on the client's goroutines.
func (t *tally) promise(_ *kgo.Record, err error) {
	if err == nil {
		return
	}
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
}

func (t *tally) produceErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}
