package loadgen

import (
	"encoding/json"
	"fmt"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// nativeItem encodes a call the way an app that pastes its SDK's reply
// would: the canonical attribution fields with the provider's own usage
// object (in the provider's own counting convention) instead of the token
// fields.
//
//   - OpenAI Chat Completions (also Mistral, DeepSeek): prompt_tokens includes
//     cached tokens; completion_tokens includes reasoning tokens.
//   - OpenAI Responses: input_tokens includes cached; output_tokens includes reasoning.
//   - Anthropic Messages: input_tokens EXCLUDES cache reads and cache writes.
//   - Gemini usageMetadata: promptTokenCount includes cachedContentTokenCount;
//     candidatesTokenCount EXCLUDES thoughtsTokenCount.
//   - Bedrock Converse: inputTokens excludes cacheReadInputTokens and
//     cacheWriteInputTokens.
func nativeItem(c *Call) ([]byte, error) {
	e := c.Event
	in, cr, cw, out, rs := e.InputTokens, e.CacheReadInputTokens, e.CacheWriteInputTokens, e.OutputTokens, e.ReasoningTokens
	// The envelope is the canonical event without its token fields.
	env := e
	env.InputTokens, env.CacheReadInputTokens, env.CacheWriteInputTokens = 0, 0, 0
	env.CacheWrite1hInputTokens, env.OutputTokens, env.ReasoningTokens = 0, 0, 0
	raw, err := json.Marshal(&env)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	delete(m, "input_tokens")
	delete(m, "output_tokens")
	var key string
	var usage any
	switch c.Native {
	case NativeOpenAIChat:
		key = "usage"
		usage = map[string]any{
			"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out,
			"prompt_tokens_details":     map[string]int64{"cached_tokens": cr, "audio_tokens": 0},
			"completion_tokens_details": map[string]int64{"reasoning_tokens": rs, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
		}
	case NativeOpenAIResponses:
		key = "usage"
		usage = map[string]any{
			"input_tokens": in, "output_tokens": out, "total_tokens": in + out,
			"input_tokens_details":  map[string]int64{"cached_tokens": cr},
			"output_tokens_details": map[string]int64{"reasoning_tokens": rs},
		}
	case NativeAnthropic:
		key = "usage"
		tier := e.ServiceTier
		if tier == "" {
			tier = event.ServiceTierStandard
		}
		usage = map[string]any{
			"input_tokens": in - cr - cw, "cache_creation_input_tokens": cw, "cache_read_input_tokens": cr,
			"output_tokens": out, "service_tier": tier,
			"cache_creation": map[string]int64{"ephemeral_5m_input_tokens": cw, "ephemeral_1h_input_tokens": 0},
		}
	case NativeGemini:
		key = "usageMetadata"
		u := map[string]any{
			"promptTokenCount": in, "candidatesTokenCount": out - rs, "totalTokenCount": in + out,
			"promptTokensDetails": []map[string]any{{"modality": "TEXT", "tokenCount": in}},
		}
		if cr > 0 {
			u["cachedContentTokenCount"] = cr
		}
		if rs > 0 {
			u["thoughtsTokenCount"] = rs
		}
		usage = u
	case NativeBedrock:
		key = "usage"
		usage = map[string]any{
			"inputTokens": in - cr - cw, "outputTokens": out, "totalTokens": in + out,
			"cacheReadInputTokens": cr, "cacheWriteInputTokens": cw,
		}
	default:
		return nil, fmt.Errorf("unknown native shape %q", c.Native)
	}
	u, err := json.Marshal(usage)
	if err != nil {
		return nil, err
	}
	m[key] = u
	return json.Marshal(m)
}
