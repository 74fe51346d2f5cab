package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// PathGateway marks calls made as real provider API requests through the
// metering gateway (Config.Gateway): the gateway checks the budget before
// each, and emits the usage event itself when the provider answers.
const PathGateway Path = "gateway"

// GatewayStats counts what the gateway did with the calls sent through it.
type GatewayStats struct {
	URL string `json:"url"`
	// Allowed calls reached the provider; their usage is in Expected.
	Allowed int64 `json:"allowed"`
	// Denied calls were refused by a budget before reaching the provider.
	Denied int64 `json:"denied"`
	// Failed calls got another error (in Unconfirmed).
	Failed int64            `json:"failed"`
	Errors map[string]int64 `json:"errors,omitempty"`
	// AllowedSpend and DeniedSpend price the planned calls (Config.Price).
	AllowedSpend decimal.Decimal `json:"allowed_spend"`
	DeniedSpend  decimal.Decimal `json:"denied_spend"`
	// Reasons are the denial reasons, by budget message (first seen kept short).
	Reasons map[string]int64 `json:"reasons,omitempty"`
}

// gatewayRoute is the provider API a call is sent to.
func gatewayRoute(provider string) (path string, ok bool) {
	switch provider {
	case "openai":
		return "/v1/chat/completions", true
	case "anthropic":
		return "/v1/messages", true
	case "gcp.gemini":
		return "/v1beta/openai/chat/completions", true
	}
	return "", false
}

// viaGateway reports whether a request goes through the gateway: its
// workflow has a gateway key and every call's provider has a route.
// History (Story) is reported after the fact with past event times, so it
// never goes through the gateway, which meters calls as they happen.
func (c *Config) viaGateway(r *Request) bool {
	if c.Story || c.Gateway == "" || c.GatewayKeys[r.Workflow] == "" {
		return false
	}
	for i := range r.Calls {
		if _, ok := gatewayRoute(r.Calls[i].Event.Provider); !ok || r.Calls[i].Bad != "" {
			return false
		}
	}
	return true
}

type gatewaySender struct {
	cfg *Config
	hc  *http.Client
	sum *Summary
}

// startGateway runs workers sending requests through the gateway until in closes.
func startGateway(ctx context.Context, wg *sync.WaitGroup, cfg *Config, sum *Summary, in <-chan *Request) {
	g := &gatewaySender{cfg: cfg, sum: sum, hc: &http.Client{Timeout: cfg.RequestTimeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}}}
	sum.mu.Lock()
	sum.Gateway = &GatewayStats{URL: cfg.Gateway, Errors: map[string]int64{}, Reasons: map[string]int64{}}
	sum.mu.Unlock()
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range in {
				// An agent's calls run one after the other.
				for j := range r.Calls {
					g.call(ctx, r, &r.Calls[j])
				}
			}
		}()
	}
}

// call makes one call as the application would: the prompt's bytes (at
// least as many as its input tokens), the output cap it planned, and for
// the fake provider a hint of the usage to report (X-Fake-Usage, which a
// real provider ignores).
func (g *gatewaySender) call(ctx context.Context, r *Request, c *Call) {
	e := &c.Event
	path, _ := gatewayRoute(e.Provider)
	content := any(strings.Repeat("x", int(max(e.InputTokens, 1))))
	if e.Provider == "anthropic" && e.CacheWriteInputTokens > 0 {
		// Writing the prompt cache needs cache_control on the request.
		content = []any{map[string]any{"type": "text", "text": content, "cache_control": map[string]any{"type": "ephemeral"}}}
	}
	body := map[string]any{"model": e.Model, "messages": []any{map[string]any{"role": "user", "content": content}}}
	switch e.Provider {
	case "anthropic", "gcp.gemini":
		body["max_tokens"] = e.OutputTokens
	default:
		body["max_completion_tokens"] = e.OutputTokens
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(g.cfg.Gateway, "/")+path, strings.NewReader(string(b)))
	if err != nil {
		g.fail(c, err.Error())
		return
	}
	key := g.cfg.GatewayKeys[r.Workflow]
	req.Header.Set("Content-Type", "application/json")
	if e.Provider == "anthropic" {
		req.Header.Set("X-Api-Key", key)
		req.Header.Set("Anthropic-Version", "2023-06-01")
	} else {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for h, v := range map[string]string{"X-Tokenmeter-User": e.UserID, "X-Tokenmeter-Team": e.Team,
		"X-Tokenmeter-Prompt-Template": e.PromptTemplate, "X-Tokenmeter-Prompt-Version": e.PromptVersion,
		"X-Tokenmeter-Application": e.Application, "X-Tokenmeter-Trace-Id": e.TraceID,
		"X-Tokenmeter-Conversation-Id": e.ConversationID} {
		if v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set("X-Fake-Usage", fmt.Sprintf("%d,%d,%d,%d,%d", e.InputTokens, e.OutputTokens,
		e.CacheReadInputTokens, e.CacheWriteInputTokens, e.ReasoningTokens))
	resp, err := g.hc.Do(req)
	if err != nil {
		g.fail(c, err.Error())
		return
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		amount := g.price(c)
		g.sum.usage(c, result{accepted: true})
		g.sum.mu.Lock()
		g.sum.Gateway.Allowed++
		g.sum.Gateway.AllowedSpend = g.sum.Gateway.AllowedSpend.Add(amount)
		g.sum.mu.Unlock()
	case resp.Header.Get("X-Tokenmeter-Decision") == "deny":
		amount := g.price(c)
		g.sum.mu.Lock()
		g.sum.Gateway.Denied++
		g.sum.Gateway.DeniedSpend = g.sum.Gateway.DeniedSpend.Add(amount)
		g.sum.Gateway.Reasons[resp.Header.Get("X-Tokenmeter-Budget")]++
		g.sum.mu.Unlock()
	default:
		g.fail(c, fmt.Sprintf("%d %s", resp.StatusCode, firstLine(msg)))
	}
}

func (g *gatewaySender) price(c *Call) decimal.Decimal {
	if g.cfg.Price == nil {
		return decimal.Zero
	}
	amount, _, err := g.cfg.Price(&c.Event)
	if err != nil {
		return decimal.Zero
	}
	return amount
}

func (g *gatewaySender) fail(c *Call, msg string) {
	g.sum.usage(c, result{failed: true})
	g.sum.mu.Lock()
	g.sum.Gateway.Failed++
	g.sum.Gateway.Errors[msg]++
	g.sum.mu.Unlock()
}

// printGateway writes the gateway's part of the summary.
func (s *Summary) printGateway(w io.Writer) {
	g := s.Gateway
	if g == nil {
		return
	}
	cur := s.SpendCurrency
	fmt.Fprintf(w, "\nthrough the metering gateway %s (budgets checked before each call):\n", g.URL)
	fmt.Fprintf(w, "  allowed: %d calls, %s %s\n", g.Allowed, g.AllowedSpend.StringFixed(2), cur)
	fmt.Fprintf(w, "  denied:  %d calls, %s %s not spent\n", g.Denied, g.DeniedSpend.StringFixed(2), cur)
	for _, k := range sortedKeys(g.Reasons) {
		fmt.Fprintf(w, "    %d denied by budget %s\n", g.Reasons[k], k)
	}
	if g.Failed > 0 {
		fmt.Fprintf(w, "  failed:  %d calls\n", g.Failed)
		for _, k := range sortedKeys(g.Errors) {
			fmt.Fprintf(w, "    %d × %s\n", g.Errors[k], k)
		}
	}
}
