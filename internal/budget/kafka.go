package budget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/retry"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/contract"
	"github.com/tokenmeter/tokenmeter/internal/event"
)

// readToEnd reads every committed record of topic up to its end as the read
// starts (kafkax.ReadToEnd's policy), calling fn for each data record.
func readToEnd(ctx context.Context, opts []kgo.Opt, topic string, fn func(*kgo.Record)) error {
	_, err := kafkax.ReadToEnd(ctx, opts, topic, kafkax.ReadRange{}, func(r *kgo.Record) error {
		fn(r)
		return nil
	})
	return err
}

// alerter produces alerts to the alerts topic exactly once and hands them to
// the webhook deliverer.
//
// Exactly once: an alert's id is deterministic (budget/period/kind/threshold).
// At start the alerter claims the transactional id (which fences any
// previous producer with it and aborts its open transaction), then reads
// every committed alert on the topic into sent. From then on it is the only
// producer of alerts, so "not in sent" means "not on the topic". Each alert
// is produced in its own transaction; a fenced alerter (another process
// took over) stops producing.
type alerter struct {
	topic string
	cl    *kgo.Client
	log   *slog.Logger
	defs  map[string]*definition
	hooks *deliverer

	in   chan event.Alert
	done chan struct{}

	mu     sync.Mutex
	sent   map[string]bool
	busy   bool // an alert is being produced
	active atomic.Bool
	fired  atomic.Int64

	// beforeCommit, when set (tests), runs after an alert is produced and
	// before its transaction commits; an error leaves the transaction open,
	// as a crash there would.
	beforeCommit func(event.Alert) error

	// Webhook delivery records (see Config.DeliveriesTopic).
	deliveriesTopic string
	marks           *kgo.Client // idempotent, not transactional
	redeliverWithin time.Duration
	now             func() time.Time
}

// deliveryRecord is the value on the deliveries topic.
type deliveryRecord struct {
	AlertID  string    `json:"alert_id"`
	Webhook  string    `json:"webhook"` // hookID(url)
	Status   string    `json:"status"`  // delivered | failed
	Attempts int       `json:"attempts"`
	Error    string    `json:"error,omitempty"`
	At       time.Time `json:"at"`
}

// recordDelivery notes a finished delivery; losing the note only means one
// redelivery (same Idempotency-Key) after a restart.
func (a *alerter) recordDelivery(alertID, hook string, attempts int, err error) {
	if a.marks == nil {
		return
	}
	rec := deliveryRecord{AlertID: alertID, Webhook: hook, Status: "delivered", Attempts: attempts, At: a.now().UTC()}
	if err != nil {
		rec.Status, rec.Error = "failed", err.Error()
	}
	v, _ := json.Marshal(rec)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if perr := a.marks.ProduceSync(ctx, &kgo.Record{Topic: a.deliveriesTopic, Key: []byte(alertID), Value: v}).FirstErr(); perr != nil {
		a.log.Warn("record webhook delivery", "alert_id", alertID, "err", perr)
	}
}

// redeliver delivers, once more, recent alerts whose delivery to some
// webhook never finished (the previous process died or stopped mid-way).
func (a *alerter) redeliver(ctx context.Context, opts []kgo.Opt, recent []event.Alert) error {
	if a.hooks == nil || a.marks == nil || len(recent) == 0 {
		return nil
	}
	done := map[string]map[string]bool{}
	err := readToEnd(ctx, opts, a.deliveriesTopic, func(r *kgo.Record) {
		var d deliveryRecord
		if json.Unmarshal(r.Value, &d) == nil {
			if done[d.AlertID] == nil {
				done[d.AlertID] = map[string]bool{}
			}
			done[d.AlertID][d.Webhook] = true
		}
	})
	if err != nil {
		return fmt.Errorf("load webhook deliveries: %w", err)
	}
	for _, al := range recent {
		d := a.defs[al.BudgetID]
		if d == nil {
			continue
		}
		missing := 0
		for _, h := range d.Webhooks {
			if !done[al.AlertID][hookID(h.URL)] {
				missing++
			}
		}
		if missing > 0 {
			a.log.Info("redelivering unfinished webhook deliveries", "alert_id", al.AlertID, "webhooks", missing)
			a.hooks.deliver(al, d, done[al.AlertID])
		}
	}
	return nil
}

func newAlerter(topic string, cl *kgo.Client, defs map[string]*definition, hooks *deliverer, log *slog.Logger) *alerter {
	return &alerter{topic: topic, cl: cl, log: log, defs: defs, hooks: hooks, now: time.Now,
		in: make(chan event.Alert, 4096), done: make(chan struct{}), sent: map[string]bool{}}
}

// claim fences previous alert producers and loads the ids already on the topic.
func (a *alerter) claim(ctx context.Context, opts []kgo.Opt) error {
	if _, _, err := a.cl.ProducerID(ctx); err != nil {
		return fmt.Errorf("claim alert transactional id: %w", err)
	}
	n := 0
	var recent []event.Alert
	since := a.now().Add(-a.redeliverWithin)
	err := readToEnd(ctx, opts, a.topic, func(r *kgo.Record) {
		var al event.Alert
		if json.Unmarshal(r.Value, &al) == nil && al.AlertID != "" {
			a.mu.Lock()
			a.sent[al.AlertID] = true
			a.mu.Unlock()
			n++
			if al.TriggeredAt.After(since) {
				recent = append(recent, al)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("load sent alerts: %w", err)
	}
	a.active.Store(true)
	a.log.Info("alerter active", "topic", a.topic, "alerts_on_topic", n)
	return a.redeliver(ctx, opts, recent)
}

// run fires queued alerts until ctx ends or in is closed.
func (a *alerter) run(ctx context.Context) {
	defer close(a.done)
	for {
		select {
		case <-ctx.Done():
			return
		case al, ok := <-a.in:
			if !ok {
				return
			}
			a.fire(ctx, al)
			a.mu.Lock()
			a.busy = false
			a.mu.Unlock()
		}
	}
}

// enqueue hands an alert to the alerter; idle reports, for tests and
// readiness, that nothing is queued or in flight.
func (a *alerter) enqueue(ctx context.Context, al event.Alert) {
	a.mu.Lock()
	a.busy = true
	a.mu.Unlock()
	select {
	case a.in <- al:
	case <-ctx.Done():
	}
}

func (a *alerter) idle() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.busy && len(a.in) == 0
}

func (a *alerter) isSent(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sent[id]
}

func (a *alerter) fire(ctx context.Context, al event.Alert) {
	if a.isSent(al.AlertID) {
		return
	}
	if !a.active.Load() {
		a.log.Warn("alert not produced: this process is not the active alerter", "alert_id", al.AlertID)
		return
	}
	val, err := json.Marshal(al)
	if err != nil {
		a.log.Error("encode alert", "alert_id", al.AlertID, "err", err)
		return
	}
	rec := &kgo.Record{Topic: a.topic, Key: []byte(al.BudgetID), Value: val}
	_, _, err = retry.Do(ctx, retry.Policy{Initial: 500 * time.Millisecond, Max: 10 * time.Second}, func() (struct{}, error) {
		err := a.produceOnce(ctx, rec, al)
		if isFenced(err) {
			return struct{}{}, retry.Permanent(err)
		}
		if err != nil {
			a.log.Warn("produce alert, retrying", "alert_id", al.AlertID, "err", err)
		}
		return struct{}{}, err
	})
	if err != nil {
		if isFenced(err) {
			a.active.Store(false)
			a.log.Warn("alerter fenced: another budget process with the same alert_transactional_id took over alerting", "err", err)
		} else if ctx.Err() == nil {
			a.log.Error("produce alert", "alert_id", al.AlertID, "err", err)
		}
		return
	}
	a.mu.Lock()
	a.sent[al.AlertID] = true
	a.mu.Unlock()
	a.fired.Add(1)
	a.log.Info("budget alert", "alert_id", al.AlertID, "spend", al.Spend, "amount", al.Amount, "currency", al.Currency)
	if d := a.defs[al.BudgetID]; d != nil && a.hooks != nil {
		a.hooks.deliver(al, d, nil)
	}
}

var errCrashed = errors.New("simulated crash before commit")

func (a *alerter) produceOnce(ctx context.Context, rec *kgo.Record, al event.Alert) error {
	if err := a.cl.BeginTransaction(); err != nil {
		return err
	}
	err := a.cl.ProduceSync(ctx, rec).FirstErr()
	if err == nil && a.beforeCommit != nil {
		if herr := a.beforeCommit(al); herr != nil {
			return errCrashed
		}
	}
	commit := kgo.TryCommit
	if err != nil {
		commit = kgo.TryAbort
		if aerr := a.cl.AbortBufferedRecords(ctx); aerr != nil {
			return errors.Join(err, aerr)
		}
	}
	if eerr := a.cl.EndTransaction(ctx, commit); eerr != nil {
		return errors.Join(err, eerr)
	}
	return err
}

func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, errCrashed)
}

// accountant reads every partition of the priced topic (no consumer group:
// budgets spanning workflows need all of a tenant's spend in one place) and
// applies each event to the ledger. At start it rebuilds the state by
// reading from the first record priced at or after the oldest current
// period start (minus a margin), and marks the ledger ready once it has
// reached the last stable offsets it saw at start.
type accountant struct {
	topic  string
	margin time.Duration
	ledger *ledger
	alerts *alerter
	log    *slog.Logger
	opts   []kgo.Opt

	decodeErrors atomic.Int64
	applied      atomic.Int64
}

func (a *accountant) run(ctx context.Context) error {
	start, any := a.ledger.oldestStart(a.ledger.now())
	if !any {
		a.ledger.ready.Store(true)
		return nil
	}
	from := start.Add(-a.margin)
	a.warnShortRetention(ctx, start, from)
	a.log.Info("rebuilding budget state", "topic", a.topic, "from", from)
	// Rebuild: everything priced since the oldest open period began (less
	// the replay margin), up to the end of the topic as the rebuild starts.
	next, err := kafkax.ReadToEnd(ctx, a.opts, a.topic, kafkax.ReadRange{AfterMilli: from.UnixMilli()}, func(r *kgo.Record) error {
		a.account(ctx, r)
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("rebuild budget state from %s: %w", a.topic, err)
	}
	a.ledger.ready.Store(true)
	a.log.Info("budget state rebuilt", "events", a.applied.Load())
	// Then follow the topic from exactly where the rebuild ended.
	consume := map[int32]kgo.Offset{}
	for p, o := range next {
		consume[p] = kgo.NewOffset().At(o)
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, a.opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{a.topic: consume}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			a.log.Warn("fetch priced", "topic", t, "partition", p, "err", err)
		})
		fs.EachRecord(func(r *kgo.Record) { a.account(ctx, r) })
	}
}

// warnShortRetention says when the priced topic no longer holds the start of
// the oldest open budget period: spend before its oldest record is not counted.
func (a *accountant) warnShortRetention(ctx context.Context, start, from time.Time) {
	admc, err := kgo.NewClient(a.opts...)
	if err != nil {
		return
	}
	defer admc.Close()
	earliest, err := kadm.NewClient(admc).ListStartOffsets(ctx, a.topic)
	if err != nil {
		return
	}
	earliest.Each(func(s kadm.ListedOffset) {
		if s.Err == nil && s.Offset > 0 && s.Timestamp > from.UnixMilli() {
			a.log.Warn("priced topic retention is shorter than the budget period: spend before the oldest record is not counted",
				"partition", s.Partition, "oldest_record", time.UnixMilli(s.Timestamp), "period_start", start)
		}
	})
}

// decodePriced reads a priced.v1 record (the contract in schemas/proto).
func decodePriced(b []byte, ev *event.PricedUsageEvent) error {
	return contract.DecodePriced(b, ev)
}

func (a *accountant) account(ctx context.Context, r *kgo.Record) {
	var ev event.PricedUsageEvent
	if err := decodePriced(r.Value, &ev); err != nil {
		a.decodeErrors.Add(1)
		a.log.Warn("undecodable priced record skipped", "partition", r.Partition, "offset", r.Offset, "err", err)
		return
	}
	a.applied.Add(1)
	for _, al := range a.ledger.apply(&ev) {
		a.alerts.enqueue(ctx, al)
	}
}

// watch probes the priced topic every interval; after two failed probes in a
// row (the broker or a partition's leader is gone) it marks the ledger stale,
// so decisions follow the not-ready policy and /readyz says why, until a
// probe succeeds again.
func (a *accountant) watch(ctx context.Context, interval time.Duration) {
	cl, err := kgo.NewClient(a.opts...)
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t := time.NewTicker(interval)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, interval)
		offs, err := adm.ListCommittedOffsets(pctx, a.topic)
		cancel()
		if err == nil {
			err = offs.Error()
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			failures = 0
			if a.ledger.stale.Swap(nil) != nil {
				a.log.Info("priced topic readable again")
			}
			continue
		}
		failures++
		if failures >= 2 {
			why := fmt.Sprintf("priced topic unreadable since %d probes: %v", failures, err)
			if a.ledger.stale.Swap(&why) == nil {
				a.log.Warn("budget state stale", "err", err)
			}
		}
	}
}
