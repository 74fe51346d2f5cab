package budget

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

func TestDeliverSignsAndRetriesLikeABudgetAlert(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		b, _ := io.ReadAll(r.Body)
		if calls == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // retried
			return
		}
		got, bodies = append(got, r), append(bodies, b)
	}))
	defer srv.Close()
	a := event.Alert{AlertID: "anomaly/acme/w/tokens_per_call/2026-11-15", Tenant: "acme", Kind: "anomaly", Spend: decimal.RequireFromString("12.5")}
	cfg := Config{WebhookInitialInterval: 10 * time.Millisecond, WebhookMaxElapsed: 10 * time.Second, WebhookTimeout: time.Second}
	err := Deliver(context.Background(), cfg, a, "finops@acme", []WebhookConfig{{URL: srv.URL, Secret: "s3cret"}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || len(got) != 1 {
		t.Fatalf("calls %d delivered %d", calls, len(got))
	}
	r := got[0]
	if r.Header.Get(HeaderIdempotencyKey) != a.AlertID {
		t.Fatalf("idempotency key %q", r.Header.Get(HeaderIdempotencyKey))
	}
	if err := VerifySignature("s3cret", r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), bodies[0], time.Now(), time.Minute); err != nil {
		t.Fatalf("signature: %v", err)
	}
	// A receiver that refuses for good is an error, not a hang.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	defer bad.Close()
	if err := Deliver(context.Background(), cfg, a, "", []WebhookConfig{{URL: bad.URL}}, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Fatal("403 not reported")
	}
}
