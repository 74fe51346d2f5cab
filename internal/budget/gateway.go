package budget

import (
	"context"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// What a metering gateway in the same process needs from the budget role
// besides Check: settle a reservation with the exact cost once the
// provider answered, release one whose call was not made, and the
// fail-open accounting of degraded decisions.

// KindFailOpen is the alert raised once per not-ready episode of an enforce
// budget that admitted calls blind because its policy is fail-open.
const KindFailOpen = "fail_open"

// Settle replaces the amounts held by a reservation with the call's exact
// cost (reporting currency) and tokens, and restarts its TTL, so the room
// an over-estimate took is given back at once. The reservation stays until
// the priced usage event carrying the request id (event_id, or attribute
// budget.request_id) is accounted, which adds the same cost as spend and
// drops the reservation in one step. False if there is no such reservation
// (already settled by its event, released or expired).
func (r *Budget) Settle(tenantID, requestID string, cost decimal.Decimal, tokens int64) bool {
	return r.ledger.settle(tenantID, requestID, estimate{cost: cost, tokens: tokens})
}

// Release drops a reservation whose call was not made (or failed without
// usage). False if there was none.
func (r *Budget) Release(tenantID, requestID string) bool {
	return r.ledger.release(tenantID, requestID)
}

// FailOpenAdmissions is the number of calls admitted while the state was not
// ready by enforce budgets whose policy is fail-open, summed over budgets.
func (r *Budget) FailOpenAdmissions() int64 {
	var n int64
	for _, b := range r.ledger.budgets {
		n += b.failOpens.Load()
	}
	return n
}

func (l *ledger) settle(tenantID, requestID string, exact estimate) bool {
	key := tenantID + "/" + requestID
	l.resMu.Lock()
	res := l.reservations[key]
	if res != nil {
		res.expires = l.now().Add(l.ttl)
	}
	l.resMu.Unlock()
	if res == nil {
		return false
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	if res.gone {
		return false
	}
	for i, b := range res.budgets {
		amt := exact.in(b.def)
		b.mu.Lock()
		b.reserved = b.reserved.Add(amt.Sub(res.amounts[i]))
		b.mu.Unlock()
		res.amounts[i] = amt
	}
	return true
}

// policy is the budget's not-ready policy, else the section's.
func (d *definition) policy(section string) string {
	if d.NotReadyPolicy != "" {
		return d.NotReadyPolicy
	}
	return section
}

// failOpen counts one blind admission; the caller holds b.mu.
func (b *budgetState) failOpen(now time.Time) {
	b.failOpens.Add(1)
	b.failOpenFrom.CompareAndSwap(0, now.UnixMilli())
}

// registerFailOpenMetric exports tokenmeter_budget_fail_open_admissions{budget,tenant}.
func (r *Budget) registerFailOpenMetric(m metric.Meter) {
	_, _ = m.Int64ObservableCounter("tokenmeter_budget_fail_open_admissions",
		metric.WithDescription("calls admitted while the budget state was not ready, by enforce budgets whose not_ready_policy is fail-open"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			for _, b := range r.ledger.budgets {
				if b.def.Mode == ModeEnforce {
					o.Observe(b.failOpens.Load(), metric.WithAttributes(attribute.String("budget", b.def.ID), attribute.String("tenant", b.def.Tenant.ID)))
				}
			}
			return nil
		}))
}

// failOpenLoop raises one fail_open alert per budget and not-ready episode
// (id budget/period/fail_open/<episode start, unix ms>, so a replayed or
// repeated raise is the same alert) and closes the episode once the state
// is ready again.
func (r *Budget) failOpenLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	raised := map[string]int64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, al := range r.failOpenAlerts(raised) {
			r.deps.Logger.Warn("budget admitted calls fail-open while its state was not ready", "budget", al.BudgetID, "admissions", al.Threshold.String())
			if r.alerter != nil {
				r.alerter.enqueue(ctx, al)
			}
		}
	}
}

// failOpenAlerts returns the alerts not raised yet (raised: budget → episode
// already alerted) and ends episodes once ready.
func (r *Budget) failOpenAlerts(raised map[string]int64) []event.Alert {
	ready, _ := r.ledger.readiness()
	now := r.now()
	var out []event.Alert
	for _, b := range r.ledger.budgets {
		from := b.failOpenFrom.Load()
		if from == 0 {
			continue
		}
		if raised[b.def.ID] != from {
			raised[b.def.ID] = from
			st := r.ledger.status(b)
			out = append(out, event.Alert{
				AlertID: b.def.ID + "/" + st.Period + "/" + KindFailOpen + "/" + strconv.FormatInt(from, 10),
				Tenant:  b.def.Tenant.ID, BudgetID: b.def.ID, Period: st.Period, Kind: KindFailOpen,
				Threshold: decimal.NewFromInt(b.failOpens.Load()), Spend: st.Spent, Amount: b.def.Amount,
				Currency: b.def.Currency, Mode: b.def.Mode, Top: st.Top, TriggeredAt: now.UTC(),
				EventTime: time.UnixMilli(from).UTC(),
			})
		}
		if ready {
			b.failOpenFrom.Store(0)
		}
	}
	return out
}
