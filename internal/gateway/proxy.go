package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/budget"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/ingest"
)

// Usage-event attributes the gateway sets.
const (
	// AttrSource is "gateway" on every event the gateway emitted.
	AttrSource = "tokenmeter.source"
	// AttrEstimated is "true" when the answer was cut before its usage
	// arrived and the counts are the gateway's estimate.
	AttrEstimated = "tokenmeter.usage_estimated"
)

// hop-by-hop and gateway-only headers, never forwarded.
var dropRequest = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
	"Authorization": true, "X-Api-Key": true, "Accept-Encoding": true, "Host": true,
	"X-Tokenmeter-Workflow": true, "X-Tokenmeter-Team": true, "X-Tokenmeter-User": true,
	"X-Tokenmeter-Prompt-Template": true, "X-Tokenmeter-Prompt-Version": true, "X-Tokenmeter-Application": true,
	"X-Tokenmeter-Trace-Id": true, "X-Tokenmeter-Conversation-Id": true,
}

var dropResponse = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Te": true, "Trailer": true, "Transfer-Encoding": true,
	"Upgrade": true, "Content-Length": true,
}

// call is one proxied call's state.
type call struct {
	api   API
	attr  attribution
	req   callRequest
	plan  plan
	reqID string
}

// ServeHTTP is the proxy.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	api := apiOf(r.URL.Path)
	if api == 0 || r.Method != http.MethodPost {
		writeError(w, APIChat, errNotFound, fmt.Sprintf("the gateway proxies POST /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/messages and /v1beta/openai/chat/completions, not %s %s", r.Method, r.URL.Path))
		return
	}
	if g.closing.Load() {
		writeError(w, api, errUnavailable, "gateway is shutting down; retry")
		return
	}
	g.inflight.Add(1)
	defer g.inflight.Done()
	start := time.Now()

	k, ok := g.lookupKey(clientKey(r))
	if !ok {
		writeError(w, api, errAuth, "unknown or missing API key for the tokenmeter gateway")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, api, errTooLarge, fmt.Sprintf("request body larger than the gateway's limit of %d bytes (gateway.max_body_bytes)", g.cfg.MaxBodyBytes))
			return
		}
		writeError(w, api, errInvalid, "cannot read request body: "+err.Error())
		return
	}
	c := &call{api: api, attr: g.attribute(k, r.Header)}
	if c.req, err = parseCall(api, body); err != nil {
		writeError(w, api, errInvalid, err.Error())
		return
	}
	if c.plan, err = g.est.worstCase(api, body, c.req, c.attr.tenant.ID, c.attr.tenant.ReportingCurrency); err != nil {
		writeError(w, api, errInvalid, fmt.Sprintf("tokenmeter cannot price %s/%s, so the call cannot be checked against its budgets: %v", api.provider(), c.req.Model, err))
		return
	}
	c.reqID = newRequestID()
	cost := c.plan.cost
	dec, code, err := g.ledger.Check(c.attr.tenant, &budget.CheckRequest{
		Workflow: c.attr.workflow, Team: c.attr.team, User: c.attr.user, APIKey: c.attr.key,
		EstimatedCost: &cost, Provider: api.provider(), Model: c.req.Model,
		EstimatedInputTokens: c.plan.inputTokens, EstimatedOutputTokens: c.plan.outputTokens,
		Reserve: true, RequestID: c.reqID,
	})
	if err != nil {
		writeError(w, api, errInvalid, fmt.Sprintf("budget check failed (%d): %v", code, err))
		return
	}
	w.Header().Set("X-Tokenmeter-Request-Id", c.reqID)
	w.Header().Set("X-Tokenmeter-Decision", dec.Decision)
	if dec.State != "ready" {
		// Degraded: the policy decided (fail-open admissions are counted and alerted by the budget role).
		w.Header().Set("X-Tokenmeter-State", dec.State+"; "+dec.Policy)
	}
	if dec.BudgetID != "" {
		w.Header().Set("X-Tokenmeter-Budget", dec.BudgetID)
	}
	if dec.Remaining != nil {
		w.Header().Set("X-Tokenmeter-Remaining", dec.Remaining.String())
	}
	if dec.Decision == budget.DecisionDeny {
		g.stats.Denied.Add(1)
		g.count(api, "denied")
		writeError(w, api, errBudget, "tokenmeter budget: "+dec.Reason)
		return
	}
	g.stats.Allowed.Add(1)
	g.count(api, "allowed")
	if g.metrics != nil && g.metrics.overhead != nil {
		g.metrics.overhead.Record(r.Context(), time.Since(start).Seconds())
	}
	g.forward(w, r, c, body)
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "gw-" + hex.EncodeToString(b[:])
}

// forward sends the call upstream and relays the answer, then settles.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, c *call, body []byte) {
	up := g.cfg.OpenAI
	switch c.api {
	case APIMessages:
		up = g.cfg.Anthropic
	case APIGeminiChat:
		up = g.cfg.Gemini
	}
	if (c.api == APIChat || c.api == APIGeminiChat) && c.req.Stream {
		body, _ = withIncludeUsage(body)
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.UpstreamTimeout)
	defer cancel()
	target := strings.TrimRight(up.URL, "/") + r.URL.Path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		g.release(c, "bad upstream url")
		writeError(w, c.api, errUpstream, "bad upstream URL: "+err.Error())
		return
	}
	for name, vs := range r.Header {
		if !dropRequest[name] {
			out.Header[name] = vs
		}
	}
	if up.APIKey != "" {
		if c.api == APIMessages {
			out.Header.Set("X-Api-Key", up.APIKey)
		} else {
			out.Header.Set("Authorization", "Bearer "+up.APIKey)
		}
	}
	resp, err := g.upstream.Do(out)
	if err != nil {
		// Nothing reached the provider's billing: give the room back.
		g.release(c, "upstream unreachable")
		if r.Context().Err() == nil {
			writeError(w, c.api, errUpstream, "upstream did not answer: "+err.Error())
		}
		return
	}
	defer resp.Body.Close()
	for name, vs := range resp.Header {
		if !dropResponse[name] {
			w.Header()[name] = vs
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Providers do not bill failed calls.
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, io.LimitReader(resp.Body, 16<<20))
		g.release(c, fmt.Sprintf("upstream answered %d", resp.StatusCode))
		return
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		g.relayStream(w, resp, c)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(raw)
	rep := parseReply(raw)
	g.settle(c, rep, err == nil && present(rep.usage))
}

// relayStream passes an SSE stream through as it arrives, reading usage on
// the way, and settles when it ends.
func (g *Gateway) relayStream(w http.ResponseWriter, resp *http.Response, c *call) {
	w.WriteHeader(resp.StatusCode)
	fl, _ := w.(http.Flusher)
	rc := http.NewResponseController(w)
	var sc streamScanner
	buf := make([]byte, 32<<10)
	clientGone, ended := false, false
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			sc.feed(buf[:n])
			if !clientGone {
				if _, werr := w.Write(buf[:n]); werr != nil {
					clientGone = true
				} else if fl != nil {
					if ferr := rc.Flush(); ferr != nil {
						clientGone = true
					}
				}
			}
			if clientGone {
				// Stop the upstream generation: closing the body cancels it.
				break
			}
		}
		if err != nil {
			ended = errors.Is(err, io.EOF)
			break
		}
	}
	sc.feed([]byte("\n"))
	g.settle(c, sc.reply, ended && present(sc.usage))
}

// release gives a reservation back when the call cost nothing.
func (g *Gateway) release(c *call, why string) {
	g.ledger.Release(c.attr.tenant.ID, c.reqID)
	g.stats.Released.Add(1)
	g.count(c.api, "released")
	g.deps.Logger.Debug("reservation released", "request_id", c.reqID, "why", why)
}

// settle turns the answer into a usage event: exact when the answer carried
// its usage, else the input bound plus the deltas already streamed. The
// reservation is set to the event's cost at once, and the event is produced
// to the usage topic; the budget role makes it spend when it is priced.
func (g *Gateway) settle(c *call, rep reply, exact bool) {
	now := g.now().UTC()
	id := rep.id
	if id == "" {
		id = c.reqID
	}
	model := rep.model
	if model == "" {
		model = c.req.Model
	}
	attrs := map[string]string{budget.AttrRequestID: c.reqID, budget.AttrAPIKey: c.attr.key, AttrSource: "gateway"}
	item := map[string]any{
		"event_id": id, "event_time": now, "tenant": c.attr.tenant.ID, "provider": c.api.provider(), "model": model,
		"operation": c.api.operation(), "workflow": c.attr.workflow, "team": c.attr.team, "user_id": c.attr.user,
		"attributes": attrs,
	}
	for k, v := range map[string]string{"prompt_template": c.attr.promptTemplate, "prompt_version": c.attr.promptVersion,
		"application": c.attr.application, "trace_id": c.attr.traceID, "conversation_id": c.attr.conversationID} {
		if v != "" {
			item[k] = v
		}
	}
	if tier := normaliseTier(firstNonEmpty(rep.tier, c.req.ServiceTier)); tier != event.ServiceTierStandard {
		item["service_tier"] = tier
	}
	var ev event.UsageEvent
	var err error
	if exact {
		item["usage"] = rep.usage
		ev, err = decodeItem(item, now)
		if err != nil {
			g.deps.Logger.Warn("provider usage not readable; charging the estimate", "request_id", c.reqID, "err", err)
			exact = false
		}
	}
	if !exact {
		delete(item, "usage")
		attrs[AttrEstimated] = "true"
		item["input_tokens"] = c.plan.inputTokens
		out := rep.deltas
		if out > c.plan.outputTokens {
			out = c.plan.outputTokens
		}
		item["output_tokens"] = out
		if ev, err = decodeItem(item, now); err != nil {
			g.deps.Logger.Error("cannot build the usage event; the reservation holds the estimate until it expires", "request_id", c.reqID, "err", err)
			return
		}
		g.stats.Estimated.Add(1)
		g.count(c.api, "estimated")
	}
	var priced event.PricedUsageEvent
	if err := g.prices.Price(&ev, c.attr.tenant.ReportingCurrency, &priced); err == nil {
		g.ledger.Settle(c.attr.tenant.ID, c.reqID, priced.BilledEffectiveCost.Decimal(), ev.InputTokens+ev.OutputTokens)
	}
	g.stats.Settled.Add(1)
	g.count(c.api, "settled")
	g.produce(c.api, &ev)
}

func decodeItem(item map[string]any, now time.Time) (event.UsageEvent, error) {
	b, err := json.Marshal(item)
	if err != nil {
		return event.UsageEvent{}, err
	}
	return ingest.DecodeUsage(b, now.Add(time.Minute))
}

// produce sends the usage event to the usage topic (acks=all, idempotent
// producer, retried until the delivery timeout). It never blocks the call:
// a full buffer (broker unreachable for long) fails at once. A failure is
// logged and counted: the reservation then holds the exact cost until it
// expires.
func (g *Gateway) produce(api API, ev *event.UsageEvent) {
	v, err := json.Marshal(ev)
	if err != nil {
		g.stats.ProduceErrors.Add(1)
		return
	}
	g.inflight.Add(1)
	g.client.TryProduce(context.Background(), &kgo.Record{Topic: g.deps.Kafka.Topics.Usage, Key: ev.Key(), Value: v},
		func(_ *kgo.Record, err error) {
			defer g.inflight.Done()
			if err != nil {
				g.stats.ProduceErrors.Add(1)
				g.count(api, "produce_error")
				g.deps.Logger.Error("usage event not produced", "event_id", ev.EventID, "err", err)
			}
		})
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
