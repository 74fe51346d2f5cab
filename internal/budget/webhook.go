package budget

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/retry"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Webhook headers.
const (
	// HeaderIdempotencyKey carries the alert id: the same alert redelivered
	// (a retry) has the same key, so a receiver can drop repeats.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderTimestamp is the Unix time (seconds) the delivery was signed at.
	HeaderTimestamp = "X-Tokenmeter-Timestamp"
	// HeaderSignature is "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)),
	// one per signing secret, separated by ", " while secrets are rotated.
	HeaderSignature = "X-Tokenmeter-Signature"
)

// Sign returns the X-Tokenmeter-Signature value for body signed at timestamp.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// SignAll returns the X-Tokenmeter-Signature value with one signature per
// secret (rotation: old and new secrets both sign).
func SignAll(secrets []string, timestamp string, body []byte) string {
	parts := make([]string, 0, len(secrets))
	for _, s := range secrets {
		parts = append(parts, Sign(s, timestamp, body))
	}
	return strings.Join(parts, ", ")
}

// VerifySignature checks a delivery's signatures in constant time — it is
// genuine when any of them was made with any of secrets (comma-separated,
// so a receiver can hold the old and the new secret while rotating) — and
// that its timestamp is within tolerance of now (0 skips the age check).
func VerifySignature(secrets, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	ok := false
	for _, secret := range strings.Split(secrets, ",") {
		want := []byte(Sign(strings.TrimSpace(secret), timestamp, body))
		for _, got := range strings.Split(signature, ",") {
			if hmac.Equal(want, []byte(strings.TrimSpace(got))) {
				ok = true
			}
		}
	}
	if !ok {
		return errors.New("signature mismatch")
	}
	if tolerance > 0 {
		sec, err := strconv.ParseInt(timestamp, 10, 64)
		if err != nil {
			return fmt.Errorf("timestamp %q: %w", timestamp, err)
		}
		if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("timestamp is %s away from now", d.Round(time.Second))
		}
	}
	return nil
}

// Payload is the generic webhook body: the alert plus who owns the budget.
type Payload struct {
	event.Alert
	Owner string `json:"owner,omitempty"`
	Scope Scope  `json:"scope"`
}

// slackPayload renders an alert for a Slack incoming webhook.
func slackPayload(a event.Alert, owner string) ([]byte, error) {
	var what string
	if a.Kind == KindProjectedOverrun {
		what = "is projected to exceed its amount before the period ends"
	} else {
		what = "crossed " + a.Threshold.String() + "%"
	}
	text := fmt.Sprintf(":warning: Budget *%s* (%s, %s) %s: spent %s of %s %s",
		a.BudgetID, a.Tenant, a.Period, what, a.Spend.StringFixed(2), a.Amount.StringFixed(2), a.Currency)
	var top []string
	for _, c := range a.Top {
		top = append(top, fmt.Sprintf("%s %s: %s", c.Kind, c.Name, c.Spend.StringFixed(2)))
	}
	detail := fmt.Sprintf("mode: %s", a.Mode)
	if owner != "" {
		detail += " · owner: " + owner
	}
	if len(top) > 0 {
		detail += "\ntop: " + strings.Join(top, ", ")
	}
	return json.Marshal(map[string]any{
		"text": text,
		"blocks": []map[string]any{
			{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": text}},
			{"type": "context", "elements": []map[string]string{{"type": "mrkdwn", "text": detail}}},
		},
	})
}

// deliverer posts alerts to webhooks, each delivery in its own goroutine
// with exponential backoff, until it succeeds, fails permanently (a 4xx
// other than 408/429) or WebhookMaxElapsed passes.
type deliverer struct {
	client      *http.Client
	maxElapsed  time.Duration
	initial     time.Duration
	log         *slog.Logger
	now         func() time.Time
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	onDelivered func(alertID, url string, attempts int, err error)
	// record, when set, durably notes a finished delivery (not one cut
	// short by shutdown), so a restart does not deliver it again.
	record func(alertID, hook string, attempts int, err error)
	// started counts deliveries begun (one per alert and webhook).
	started atomic.Int64
}

// signingSecrets are Secret and Secrets, empty ones left out.
func (h WebhookConfig) signingSecrets() []string {
	var out []string
	for _, s := range append([]string{h.Secret}, h.Secrets...) {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// hookID names a webhook without its URL (Slack URLs are secrets).
func hookID(url string) string {
	s := sha256.Sum256([]byte(url))
	return hex.EncodeToString(s[:8])
}

func newDeliverer(cfg Config, log *slog.Logger) *deliverer {
	ctx, cancel := context.WithCancel(context.Background())
	return &deliverer{
		client:     &http.Client{Timeout: cfg.WebhookTimeout},
		maxElapsed: cfg.WebhookMaxElapsed, initial: cfg.WebhookInitialInterval,
		log: log, now: time.Now, ctx: ctx, cancel: cancel,
	}
}

// deliver starts delivering a to the webhooks of d; skip (may be nil)
// names webhooks (by hookID) already done.
func (w *deliverer) deliver(a event.Alert, d *definition, skip map[string]bool) {
	for _, h := range d.Webhooks {
		hid := hookID(h.URL)
		if skip[hid] {
			continue
		}
		w.wg.Add(1)
		w.started.Add(1)
		go func(h WebhookConfig) {
			defer w.wg.Done()
			attempts, err := w.send(w.ctx, a, d, h)
			if w.ctx.Err() != nil {
				// Cut short by shutdown: no record, so the next start redelivers.
				w.log.Info("webhook delivery interrupted by shutdown", "alert_id", a.AlertID, "webhook", hid)
				return
			}
			if err != nil {
				w.log.Error("webhook delivery failed", "alert_id", a.AlertID, "webhook", hid, "attempts", attempts, "err", err)
			} else {
				w.log.Info("webhook delivered", "alert_id", a.AlertID, "webhook", hid, "attempts", attempts)
			}
			if w.record != nil {
				w.record(a.AlertID, hid, attempts, err)
			}
			if w.onDelivered != nil {
				w.onDelivered(a.AlertID, h.URL, attempts, err)
			}
		}(h)
	}
}

func (w *deliverer) send(ctx context.Context, a event.Alert, d *definition, h WebhookConfig) (int, error) {
	var (
		body []byte
		err  error
	)
	if h.Format == FormatSlack {
		body, err = slackPayload(a, d.Owner)
	} else {
		body, err = json.Marshal(Payload{Alert: a, Owner: d.Owner, Scope: d.Scope})
	}
	if err != nil {
		return 0, fmt.Errorf("encode: %w", err)
	}
	_, attempts, err := retry.Do(ctx, retry.Policy{Initial: w.initial, Max: time.Minute, MaxElapsed: w.maxElapsed}, func() (struct{}, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
		if err != nil {
			return struct{}{}, retry.Permanent(err)
		}
		ts := strconv.FormatInt(w.now().Unix(), 10)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "tokenmeter-budget")
		req.Header.Set(HeaderIdempotencyKey, a.AlertID)
		req.Header.Set(HeaderTimestamp, ts)
		if secrets := h.signingSecrets(); len(secrets) > 0 {
			req.Header.Set(HeaderSignature, SignAll(secrets, ts, body))
		}
		resp, err := w.client.Do(req)
		if err != nil {
			return struct{}{}, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return struct{}{}, nil
		case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
			return struct{}{}, fmt.Errorf("receiver answered %s", resp.Status)
		default:
			return struct{}{}, retry.Permanent(fmt.Errorf("receiver answered %s", resp.Status))
		}
	})
	return attempts, err
}

// close stops deliveries: attempts in flight are cancelled and no retry is
// scheduled (a receiver that is down must not hold up shutdown for
// webhook_max_elapsed). It waits for the delivery goroutines to return.
func (w *deliverer) close(ctx context.Context) error {
	w.cancel()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("webhook deliveries did not stop: %w", ctx.Err())
	}
}
