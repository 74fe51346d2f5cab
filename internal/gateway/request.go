package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// API is the provider API a path belongs to.
type API int

// The proxied APIs.
const (
	APIChat API = iota + 1
	APIResponses
	APIEmbeddings
	APIMessages
	// APIGeminiChat is Gemini's OpenAI-compatible chat endpoint
	// (/v1beta/openai/chat/completions): chat shapes, Google prices.
	APIGeminiChat
)

// apiOf maps a request path to its API (0: not proxied).
func apiOf(path string) API {
	switch path {
	case "/v1/chat/completions":
		return APIChat
	case "/v1/responses":
		return APIResponses
	case "/v1/embeddings":
		return APIEmbeddings
	case "/v1/messages":
		return APIMessages
	case "/v1beta/openai/chat/completions":
		return APIGeminiChat
	}
	return 0
}

func (a API) provider() string {
	switch a {
	case APIMessages:
		return "anthropic"
	case APIGeminiChat:
		return "gcp.gemini"
	}
	return "openai"
}

func (a API) operation() string {
	switch a {
	case APIChat, APIGeminiChat:
		return "chat"
	case APIResponses:
		return "responses"
	case APIEmbeddings:
		return "embeddings"
	}
	return "messages"
}

// callRequest is what the gateway reads of a request body.
type callRequest struct {
	Model               string          `json:"model"`
	Stream              bool            `json:"stream"`
	StreamOptions       json.RawMessage `json:"stream_options"`
	MaxTokens           *int64          `json:"max_tokens"`            // chat (legacy), messages
	MaxCompletionTokens *int64          `json:"max_completion_tokens"` // chat
	MaxOutputTokens     *int64          `json:"max_output_tokens"`     // responses
	ServiceTier         string          `json:"service_tier"`
}

// plan is a call's worst-case estimate before it is forwarded.
type plan struct {
	api          API
	model        string
	stream       bool
	serviceTier  string
	inputTokens  int64
	outputTokens int64
	cost         decimal.Decimal // reporting currency
	tokens       int64
}

// parseCall reads the model, the output cap and the stream flag of a body.
func parseCall(api API, body []byte) (callRequest, error) {
	var cr callRequest
	if err := json.Unmarshal(body, &cr); err != nil {
		return cr, fmt.Errorf("request body is not a JSON object: %v", err)
	}
	if cr.Model == "" {
		return cr, fmt.Errorf("model: required")
	}
	for _, p := range []*int64{cr.MaxTokens, cr.MaxCompletionTokens, cr.MaxOutputTokens} {
		if p != nil && *p < 0 {
			return cr, fmt.Errorf("max tokens must not be negative")
		}
	}
	return cr, nil
}

// outputCap is the most output (reasoning included) the call may produce.
func (cr callRequest) outputCap(api API, def int64) int64 {
	if api == APIEmbeddings {
		return 0
	}
	for _, p := range []*int64{cr.MaxCompletionTokens, cr.MaxOutputTokens, cr.MaxTokens} {
		if p != nil {
			return *p
		}
	}
	return def
}

// estimator prices plans with the processor's engine.
type estimator struct {
	prices        *pricing.Engine
	bytesPerToken int64
	defaultOut    int64
	now           func() time.Time
}

// worstCase estimates a call: input tokens bound by the body size, output
// by the request's cap, and priced as the dearest way the provider could
// bill that usage: all output as reasoning or none, and (when the body asks
// for prompt caching) all input as cache writes. Pricing the bound through
// the engine applies the long-context tier whenever the bound crosses it.
func (e *estimator) worstCase(api API, body []byte, cr callRequest, tenantID, currency string) (plan, error) {
	p := plan{api: api, model: cr.Model, stream: cr.Stream, serviceTier: cr.ServiceTier,
		inputTokens:  (int64(len(body)) + e.bytesPerToken - 1) / e.bytesPerToken,
		outputTokens: cr.outputCap(api, e.defaultOut)}
	p.tokens = p.inputTokens + p.outputTokens
	tier := normaliseTier(cr.ServiceTier)
	base := pricing.EstimateRequest{Tenant: tenantID, Provider: api.provider(), Model: cr.Model, ServiceTier: tier,
		At: e.now(), InputTokens: p.inputTokens, OutputTokens: p.outputTokens, BillingCurrency: currency}
	variants := []pricing.EstimateRequest{base}
	if p.outputTokens > 0 {
		v := base
		v.ReasoningTokens = p.outputTokens
		variants = append(variants, v)
	}
	var best decimal.Decimal
	for i, v := range variants {
		out, err := e.prices.Estimate(v)
		if err != nil {
			return p, err
		}
		c := out.BilledEffectiveCost.Decimal()
		if i == 0 || c.GreaterThan(best) {
			best = c
		}
	}
	if api == APIMessages && bytes.Contains(body, []byte(`"cache_control"`)) {
		// Cache writes cost more than plain input: price the input as writes.
		ev := event.UsageEvent{EventID: "estimate", EventTime: e.now().UTC(), Tenant: tenantID, Provider: api.provider(),
			Model: cr.Model, ServiceTier: tier, InputTokens: p.inputTokens, CacheWriteInputTokens: p.inputTokens,
			OutputTokens: p.outputTokens}
		if bytes.Contains(body, []byte(`"1h"`)) {
			ev.CacheWrite1hInputTokens = p.inputTokens // one-hour writes cost more
		}
		var out event.PricedUsageEvent
		if err := e.prices.Price(&ev, currency, &out); err == nil && out.BilledEffectiveCost.Decimal().GreaterThan(best) {
			best = out.BilledEffectiveCost.Decimal()
		}
	}
	p.cost = best
	return p, nil
}

// normaliseTier maps a request's service_tier to the catalogue's tiers
// ("auto"/"default"/"" are standard).
func normaliseTier(t string) string {
	switch t {
	case event.ServiceTierBatch, event.ServiceTierFlex, event.ServiceTierPriority:
		return t
	}
	return event.ServiceTierStandard
}

// withIncludeUsage returns a chat body whose stream asks for the final
// usage chunk (stream_options.include_usage), keeping every other field.
func withIncludeUsage(body []byte) ([]byte, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body, false
	}
	opts := map[string]json.RawMessage{}
	if raw, ok := m["stream_options"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if json.Unmarshal(raw, &opts) != nil {
			return body, false
		}
	}
	if v, ok := opts["include_usage"]; ok && bytes.Equal(bytes.TrimSpace(v), []byte("true")) {
		return body, false
	}
	opts["include_usage"] = json.RawMessage("true")
	m["stream_options"], _ = json.Marshal(opts)
	out, err := json.Marshal(m)
	if err != nil {
		return body, false
	}
	return out, true
}
