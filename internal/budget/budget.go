// Package budget is the budget role: it accounts priced spend against
// declared budgets, raises threshold and projected-overrun alerts exactly
// once, delivers them to webhooks, and answers gateways' "may this call
// spend this much?" with reservations so concurrent callers cannot overshoot.
//
// # Design
//
// Accounting. Every budget process reads all partitions of the priced topic
// directly (no consumer group, read_committed). Records are keyed
// tenant/workflow, so a workflow budget lives on one partition, but tenant
// and team budgets span partitions; reading all of them gives each process
// the complete, exact state with no cross-process merge. This is sized for
// moderate volumes (one process handles every priced event; accounting is a
// map update per event). The processor's transactional, de-duplicated
// output makes priced.v1 exactly-once; the ledger also drops a repeated
// tenant/event_id seen within dedupe_window (a safeguard, bounded in memory).
//
// Rebuild. State is kept in memory only. On start the accountant looks up,
// per partition, the first record priced at or after the oldest current
// period start (minus replay_margin) and replays from there, applying only
// events whose event_time falls in the current (or previous) period. The
// replay is deterministic: the same records give the same sums and the same
// crossings (projections use event time, not the wall clock). Until the
// replay reaches the last stable offsets seen at start the state is "not
// ready" and decisions follow not_ready_policy. The priced topic's retention
// must cover the longest budget period (31 days for months, 92 for
// quarters); when it does not, a warning is logged and spend before the
// oldest record is missing.
//
// Alerts exactly once. An alert's id is budget/period/kind/threshold. The
// alerter claims a Kafka transactional id (fencing any earlier alerter and
// aborting its open transaction), reads every committed alert id from the
// alerts topic, and only then fires: an alert whose id is on the topic is
// never produced again, and each alert is produced in its own transaction.
// A crash after a threshold was crossed but before its alert committed
// leaves nothing on the topic; the replay after restart crosses the
// threshold again and the alert is produced then, once.
//
// Webhooks. Alerts are delivered after their transaction commits, with
// retries and backoff. Each finished delivery is recorded on the deliveries
// topic; on start, recent alerts with an unrecorded webhook are delivered
// again (same Idempotency-Key): at least once, duplicates only after a crash
// between a receiver's 2xx and the record.
//
// Decisions. Each budget has a mutex. A check locks every applicable budget
// in id order, decides, and reserves the estimate on all of them before
// unlocking, so concurrent checks see each other's reservations: admitted
// reservations never exceed the amount. A reservation is settled by the
// priced event whose event_id equals the request id (spend added and
// reservation dropped under the same lock) or released after
// reservation_ttl. Reservations live in the process that granted them: run
// one budget process per set of tenants, or route a tenant's gateway calls
// to one process.
package budget

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/role"
)

// pricer prices a synthetic usage event for ask-by-model estimates;
// *pricing.Engine implements it.
type pricer interface {
	Price(ev *event.UsageEvent, billingCurrency string, out *event.PricedUsageEvent) error
}

// Budget is the budget role.
type Budget struct {
	cfg    Config
	deps   role.Deps
	prices pricer
	ledger *ledger
	defs   map[string]*definition
	hooks  *deliverer

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	alerter  *alerter
	acct     *accountant
	producer *kgo.Client
	marks    *kgo.Client
	stopOnce sync.Once

	decisions metric.Int64Counter
	latency   metric.Float64Histogram

	// commitments answers CheckResponse.CommitmentAdvice (nil: none).
	commitments CommitmentAdvisor
	// now is the clock; tests replace it.
	now func() time.Time
	// beforeCommit is handed to the alerter (tests simulate a crash with it).
	beforeCommit func(event.Alert) error
	// probeEvery is how often the priced topic is probed for readability. 5s; tests shorten it.
	probeEvery time.Duration
}

// New builds the role; it validates cfg first and checks every budget's tenant.
func New(cfg Config, prices *pricing.Engine, deps role.Deps) (*Budget, error) {
	var p pricer
	if prices != nil {
		p = prices
	}
	return newBudget(cfg, p, deps, time.Now)
}

func newBudget(cfg Config, prices pricer, deps role.Deps, now func() time.Time) (*Budget, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Tenants == nil {
		return nil, errors.New("budget: no tenant registry")
	}
	if err := cfg.CheckTenants(func(id string) bool { _, ok := deps.Tenants.Lookup(id); return ok }); err != nil {
		return nil, err
	}
	var defs []*definition
	byID := map[string]*definition{}
	for _, bc := range cfg.Budgets {
		t, _ := deps.Tenants.Lookup(bc.Tenant)
		d := newDefinition(bc, t)
		defs = append(defs, d)
		byID[d.ID] = d
	}
	r := &Budget{cfg: cfg, deps: deps, prices: prices, defs: byID, now: now, probeEvery: 5 * time.Second,
		ledger: newLedger(defs, cfg.ReservationTTL, cfg.DedupeWindow, now), hooks: newDeliverer(cfg, deps.Logger)}
	if deps.Meter != nil {
		r.decisions, _ = deps.Meter.Int64Counter("tokenmeter_budget_decisions",
			metric.WithDescription("budget decisions by outcome"))
		r.latency, _ = deps.Meter.Float64Histogram("tokenmeter_budget_check_seconds",
			metric.WithDescription("decision API handling time"), metric.WithUnit("s"))
		_, _ = deps.Meter.Int64ObservableCounter("tokenmeter_budget_alerts_fired",
			metric.WithDescription("alerts produced to the alerts topic by this process"),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				if r.alerter != nil {
					o.Observe(r.alerter.fired.Load())
				}
				return nil
			}))
		_, _ = deps.Meter.Int64ObservableCounter("tokenmeter_budget_events",
			metric.WithDescription("priced events applied to budgets, and those skipped"),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				if r.acct != nil {
					o.Observe(r.acct.applied.Load(), metric.WithAttributes(attribute.String("result", "applied")))
					o.Observe(r.acct.decodeErrors.Load(), metric.WithAttributes(attribute.String("result", "undecodable")))
				}
				o.Observe(r.ledger.duplicates.Load(), metric.WithAttributes(attribute.String("result", "duplicate")))
				o.Observe(r.ledger.mismatched.Load(), metric.WithAttributes(attribute.String("result", "currency_mismatch")))
				o.Observe(r.ledger.tooLate.Load(), metric.WithAttributes(attribute.String("result", "too_late")))
				return nil
			}))
		r.registerFailOpenMetric(deps.Meter)
		// Percent of each budget used in its current period, for dashboards
		// and alerting rules (a float for presentation only; the API and
		// alerts carry the exact decimals).
		_, _ = deps.Meter.Float64ObservableGauge("tokenmeter_budget_used_percent",
			metric.WithDescription("spend of the current period as a percentage of the budget amount"),
			metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
				for _, b := range r.ledger.budgets {
					st := r.ledger.status(b)
					f, _ := st.UsedPercent.Float64()
					o.Observe(f, metric.WithAttributes(attribute.String("budget", st.ID),
						attribute.String("tenant", st.Tenant), attribute.String("mode", st.Mode)))
				}
				return nil
			}))
	}
	return r, nil
}

// Name implements role.Role.
func (r *Budget) Name() string { return "budget" }

// Start registers the HTTP API and starts rebuilding the state in the
// background; the API answers (per not_ready_policy) from the start.
func (r *Budget) Start(ctx context.Context, fatal chan<- error) error {
	if r.deps.Mux != nil {
		r.routes(r.deps.Mux)
	}
	txnID := r.cfg.AlertTransactionalID
	if txnID == "" {
		txnID = r.deps.Kafka.ClientID + "-budget-alerts"
	}
	opts := r.deps.Kafka.ClientOpts()
	producer, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.TransactionalID(txnID), kgo.TransactionTimeout(time.Minute),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
	if err != nil {
		return fmt.Errorf("alerts producer: %w", err)
	}
	marks, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
	if err != nil {
		producer.Close()
		return fmt.Errorf("deliveries producer: %w", err)
	}
	if err := kafkax.EnsureTopics(ctx, marks, r.deps.Kafka.Topics, r.deps.Logger, r.cfg.DeliveriesTopic); err != nil {
		producer.Close()
		marks.Close()
		return fmt.Errorf("budget: %w", err)
	}
	r.producer, r.marks = producer, marks
	r.alerter = newAlerter(r.deps.Kafka.Topics.Alerts, producer, r.defs, r.hooks, r.deps.Logger)
	r.alerter.beforeCommit = r.beforeCommit
	r.alerter.deliveriesTopic, r.alerter.marks, r.alerter.redeliverWithin = r.cfg.DeliveriesTopic, marks, r.cfg.WebhookMaxElapsed
	r.alerter.now = r.now
	r.hooks.record = r.alerter.recordDelivery
	r.acct = &accountant{topic: r.deps.Kafka.Topics.Priced, margin: r.cfg.ReplayMargin, ledger: r.ledger,
		alerts: r.alerter, log: r.deps.Logger, opts: opts}

	// The role's goroutines outlive Start's ctx only until Shutdown.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.wg.Add(4)
	go func() {
		defer r.wg.Done()
		r.expireLoop(rctx)
	}()
	go func() {
		defer r.wg.Done()
		r.failOpenLoop(rctx, time.Second)
	}()
	go func() {
		defer r.wg.Done()
		r.acct.watch(rctx, r.probeEvery)
	}()
	go func() {
		defer r.wg.Done()
		// The alerter must know what is already on the alerts topic before the
		// replay raises anything.
		if err := r.alerter.claim(rctx, opts); err != nil {
			if rctx.Err() == nil {
				fatal <- fmt.Errorf("budget: %w", err)
			}
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.alerter.run(rctx)
		}()
		if err := r.acct.run(rctx); err != nil && rctx.Err() == nil {
			fatal <- fmt.Errorf("budget: %w", err)
		}
	}()
	return nil
}

func (r *Budget) expireLoop(ctx context.Context) {
	every := r.cfg.ReservationTTL / 10
	if every < 100*time.Millisecond {
		every = 100 * time.Millisecond
	}
	if every > 10*time.Second {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n := r.ledger.expire(); n > 0 {
				r.deps.Logger.Info("reservations expired", "count", n)
			}
		}
	}
}

// Ready implements role.Checker: ready once the state is rebuilt.
func (r *Budget) Ready(context.Context) error {
	if ok, why := r.ledger.readiness(); !ok {
		return errors.New(why)
	}
	return nil
}

// settled reports that the state is rebuilt and every raised alert has been
// produced (tests wait on it).
func (r *Budget) settled() bool {
	return r.ledger.ready.Load() && r.alerter != nil && r.alerter.active.Load() && r.alerter.idle()
}

// Shutdown stops reading and alerting, waits for webhook deliveries in
// flight until ctx's deadline, and closes the clients. Alerts raised but not
// yet produced are not lost: the next start's replay raises them again.
// Safe to call twice.
func (r *Budget) Shutdown(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		if r.cancel != nil {
			r.cancel()
		}
		done := make(chan struct{})
		go func() { r.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("budget shutdown: %w", ctx.Err())
		}
		if herr := r.hooks.close(ctx); herr != nil {
			err = errors.Join(err, herr)
		}
		if r.producer != nil {
			r.producer.Close()
		}
		if r.marks != nil {
			r.marks.Close()
		}
	})
	return err
}
