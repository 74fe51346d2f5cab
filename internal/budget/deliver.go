package budget

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Deliver posts an alert raised outside the budget role (a driver anomaly
// from `tokenmeter levers anomalies --publish`) to hooks with the budget
// role's delivery rules — signature, Idempotency-Key (the alert id), Slack
// format, retries with backoff within cfg's webhook settings — and waits for
// every delivery. The receiver drops a repeat by its Idempotency-Key.
func Deliver(ctx context.Context, cfg Config, a event.Alert, owner string, hooks []WebhookConfig, log *slog.Logger) error {
	cfg.ApplyDefaults()
	w := newDeliverer(cfg, log)
	var mu sync.Mutex
	var errs []error
	w.onDelivered = func(_, _ string, _ int, err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	w.deliver(a, &definition{ID: a.BudgetID, Owner: owner, Webhooks: hooks}, nil)
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		w.cancel()
	case <-ctx.Done():
		_ = w.close(context.Background())
		return ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(errs...)
}
