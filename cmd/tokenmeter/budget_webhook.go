package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/budget"
)

func init() {
	register("webhook-receiver", "receive budget alert webhooks, verify their HMAC signature and log each delivery (demo and testing)", webhookReceiverCmd)
}

// webhookReceiverCmd is a small alert receiver: it verifies every delivery's
// X-Tokenmeter-Signature, drops repeats by Idempotency-Key, and prints one
// line per delivery. --fail-first makes it answer 503 to the first attempts
// of each alert, to watch the sender's retries.
func webhookReceiverCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("webhook-receiver", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9099", "address to listen on")
	secret := fs.String("secret", envOr("TOKENMETER_WEBHOOK_SECRET", "demo-webhook-secret"),
		"shared HMAC secret, or several comma-separated while rotating (env TOKENMETER_WEBHOOK_SECRET); empty accepts unsigned deliveries")
	tolerance := fs.Duration("tolerance", 5*time.Minute, "largest accepted age of X-Tokenmeter-Timestamp")
	failFirst := fs.Int("fail-first", 0, "answer 503 to the first N attempts of each alert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *listen, err)
	}
	rc := &receiver{secret: *secret, tolerance: *tolerance, failFirst: *failFirst, out: os.Stdout,
		seen: map[string]bool{}, attempts: map[string]int{}}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "webhook-receiver: listening on http://%s (signature check: %v)\n", ln.Addr(), *secret != "")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok {
		return v
	}
	return def
}

type receiver struct {
	secret    string
	tolerance time.Duration
	failFirst int
	out       io.Writer

	mu       sync.Mutex
	seen     map[string]bool // idempotency keys delivered
	attempts map[string]int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	key := r.Header.Get(budget.HeaderIdempotencyKey)
	now := time.Now().UTC().Format(time.RFC3339)
	if rc.secret != "" {
		if err := budget.VerifySignature(rc.secret, r.Header.Get(budget.HeaderTimestamp),
			r.Header.Get(budget.HeaderSignature), body, time.Now(), rc.tolerance); err != nil {
			fmt.Fprintf(rc.out, "%s REJECTED %s %s: %v\n", now, r.URL.Path, key, err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
	}
	// Keys are per endpoint: one alert goes to every webhook of its budget.
	pk := r.URL.Path + " " + key
	rc.mu.Lock()
	rc.attempts[pk]++
	attempt := rc.attempts[pk]
	dup := rc.seen[pk]
	fail := attempt <= rc.failFirst
	if !fail {
		rc.seen[pk] = true
	}
	rc.mu.Unlock()
	if fail {
		fmt.Fprintf(rc.out, "%s attempt %d of %s answered 503 (--fail-first)\n", now, attempt, key)
		http.Error(w, "failing on purpose", http.StatusServiceUnavailable)
		return
	}
	if dup {
		fmt.Fprintf(rc.out, "%s duplicate delivery of %s ignored (idempotency key seen)\n", now, key)
		w.WriteHeader(http.StatusOK)
		return
	}
	var a budget.Payload
	var slack struct {
		Text string `json:"text"`
	}
	switch {
	case json.Unmarshal(body, &a) == nil && a.AlertID != "":
		fmt.Fprintf(rc.out, "%s verified alert %s: budget %s (%s) %s %s%% spend %s of %s %s, mode %s, attempt %d\n",
			now, a.AlertID, a.BudgetID, a.Tenant, a.Kind, a.Threshold, a.Spend.StringFixed(2), a.Amount.StringFixed(2),
			a.Currency, a.Mode, attempt)
	case json.Unmarshal(body, &slack) == nil && slack.Text != "":
		fmt.Fprintf(rc.out, "%s verified slack message %s: %s (attempt %d)\n", now, key, slack.Text, attempt)
	default:
		fmt.Fprintf(rc.out, "%s verified delivery %s: %s\n", now, key, body)
	}
	w.WriteHeader(http.StatusOK)
}
