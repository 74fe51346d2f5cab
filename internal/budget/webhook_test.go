package budget

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

type delivery struct {
	header http.Header
	body   []byte
}

// flakyReceiver fails the first `failures` requests with 503, then accepts.
func flakyReceiver(t *testing.T, failures int) (*httptest.Server, func() []delivery) {
	var mu sync.Mutex
	var got []delivery
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, delivery{r.Header.Clone(), b})
		n := len(got)
		mu.Unlock()
		if n <= failures {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []delivery { mu.Lock(); defer mu.Unlock(); return append([]delivery(nil), got...) }
}

func testAlert() event.Alert {
	return event.Alert{AlertID: "b/2026-11/threshold/80", Tenant: "acme", BudgetID: "b", Period: "2026-11",
		Kind: KindThreshold, Threshold: decimal.NewFromInt(80), Spend: decimal.RequireFromString("85.5"),
		Amount: decimal.NewFromInt(100), Currency: "HKD", Mode: ModeEnforce,
		Top: []event.Contributor{{Kind: "workflow", Name: "support", Spend: decimal.RequireFromString("85.5")}}}
}

func testDeliverer(t *testing.T) (*deliverer, chan [2]any) {
	cfg := Config{}
	cfg.ApplyDefaults()
	cfg.WebhookInitialInterval = 5 * time.Millisecond
	cfg.WebhookMaxElapsed = time.Minute
	d := newDeliverer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan [2]any, 4)
	d.onDelivered = func(_, _ string, attempts int, err error) { done <- [2]any{attempts, err} }
	t.Cleanup(func() { _ = d.close(context.Background()) })
	return d, done
}

func TestWebhookRetriesUntilReceiverAcceptsAndSignsEveryAttempt(t *testing.T) {
	srv, deliveries := flakyReceiver(t, 2)
	d, done := testDeliverer(t)
	def := &definition{ID: "b", Owner: "finops@acme.example", Webhooks: []WebhookConfig{{URL: srv.URL, Secret: "s3cret", Format: FormatGeneric}}}
	d.deliver(testAlert(), def, nil)
	res := <-done
	if res[0].(int) != 3 || res[1] != nil {
		t.Fatalf("attempts %v err %v; want 3 attempts (2 failures + success), no error", res[0], res[1])
	}
	got := deliveries()
	if len(got) != 3 {
		t.Fatalf("receiver saw %d requests", len(got))
	}
	for i, dl := range got {
		if k := dl.header.Get("Idempotency-Key"); k != "b/2026-11/threshold/80" {
			t.Errorf("attempt %d idempotency key %q", i, k)
		}
		// Independent HMAC: sha256 over "<timestamp>.<body>" with the shared secret.
		m := hmac.New(sha256.New, []byte("s3cret"))
		m.Write([]byte(dl.header.Get("X-Tokenmeter-Timestamp") + "." + string(dl.body)))
		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
		if sig := dl.header.Get("X-Tokenmeter-Signature"); sig != want {
			t.Errorf("attempt %d signature %q, want %q", i, sig, want)
		}
		var p Payload
		if err := json.Unmarshal(dl.body, &p); err != nil || p.AlertID != "b/2026-11/threshold/80" || p.Spend.String() != "85.5" || p.Owner != "finops@acme.example" {
			t.Errorf("attempt %d payload %s (%v)", i, dl.body, err)
		}
	}
	// The exported verifier agrees, and rejects a tampered body.
	last := got[2]
	ts, sig := last.header.Get(HeaderTimestamp), last.header.Get(HeaderSignature)
	if err := VerifySignature("s3cret", ts, sig, last.body, time.Now(), time.Hour); err != nil {
		t.Errorf("verify: %v", err)
	}
	if VerifySignature("s3cret", ts, sig, append(last.body, ' '), time.Now(), 0) == nil {
		t.Error("tampered body verified")
	}
	if VerifySignature("other", ts, sig, last.body, time.Now(), 0) == nil {
		t.Error("wrong secret verified")
	}
}

func TestWebhookSlackFormatAndPermanentFailure(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/gone") {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	d, done := testDeliverer(t)
	d.deliver(testAlert(), &definition{ID: "b", Webhooks: []WebhookConfig{{URL: srv.URL + "/slack", Format: FormatSlack}}}, nil)
	if res := <-done; res[1] != nil {
		t.Fatal(res[1])
	}
	var sl struct {
		Text   string           `json:"text"`
		Blocks []map[string]any `json:"blocks"`
	}
	mu.Lock()
	err := json.Unmarshal([]byte(bodies[0]), &sl)
	mu.Unlock()
	if err != nil || !strings.Contains(sl.Text, "*b*") || !strings.Contains(sl.Text, "crossed 80%") ||
		!strings.Contains(sl.Text, "85.50 of 100.00 HKD") || len(sl.Blocks) != 2 {
		t.Fatalf("slack payload %+v (%v)", sl, err)
	}
	// A 404 is not retried.
	d.deliver(testAlert(), &definition{ID: "b", Webhooks: []WebhookConfig{{URL: srv.URL + "/gone"}}}, nil)
	if res := <-done; res[0].(int) != 1 || res[1] == nil {
		t.Fatalf("404: attempts %v err %v", res[0], res[1])
	}
}

// Secrets rotate without downtime: during a rotation every delivery carries
// a signature per secret, so a receiver on the old secret and one already
// on the new secret both verify it; a receiver may also hold both.
func TestWebhookSecretRotation(t *testing.T) {
	srv, deliveries := flakyReceiver(t, 0)
	d, done := testDeliverer(t)
	def := &definition{ID: "b", Owner: "o", Webhooks: []WebhookConfig{{URL: srv.URL, Secret: "old-secret", Secrets: []string{"new-secret"}, Format: FormatGeneric}}}
	d.deliver(testAlert(), def, nil)
	if res := <-done; res[1] != nil {
		t.Fatal(res[1])
	}
	dl := deliveries()[0]
	ts, sig := dl.header.Get(HeaderTimestamp), dl.header.Get(HeaderSignature)
	// Independent HMACs, in the configured order.
	var want []string
	for _, s := range []string{"old-secret", "new-secret"} {
		m := hmac.New(sha256.New, []byte(s))
		m.Write([]byte(ts + "." + string(dl.body)))
		want = append(want, "sha256="+hex.EncodeToString(m.Sum(nil)))
	}
	if sig != strings.Join(want, ", ") {
		t.Fatalf("signature header %q, want %q", sig, strings.Join(want, ", "))
	}
	for _, receiver := range []string{"old-secret", "new-secret", "new-secret,old-secret"} {
		if err := VerifySignature(receiver, ts, sig, dl.body, time.Now(), time.Hour); err != nil {
			t.Errorf("receiver with %q: %v", receiver, err)
		}
	}
	if err := VerifySignature("retired-secret", ts, sig, dl.body, time.Now(), time.Hour); err == nil {
		t.Error("a secret no longer configured verified")
	}
}
