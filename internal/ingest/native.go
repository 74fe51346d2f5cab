package ingest

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Provider-native usage.
//
// An item may carry, instead of the canonical token fields, the `usage`
// object a provider returned (or Gemini's `usageMetadata`), or the whole SDK
// reply as `response`. Each provider counts differently; they are mapped to
// the OTel GenAI rule tokenmeter uses (input includes cache reads and writes,
// output includes reasoning):
//
//	shape (detected by its keys)        input_tokens                              cache read / write                     output_tokens                  reasoning
//	OpenAI Chat Completions             prompt_tokens (includes cached)           prompt_tokens_details.cached_tokens / - completion_tokens (incl. reas.) completion_tokens_details.reasoning_tokens
//	OpenAI Responses                    input_tokens (includes cached)            input_tokens_details.cached_tokens / - output_tokens (incl. reas.)     output_tokens_details.reasoning_tokens
//	Anthropic Messages                  input_tokens + cache_read + cache_creation cache_read_input_tokens / cache_creation_input_tokens  output_tokens  - (thinking is inside output_tokens)
//	Gemini usageMetadata                promptTokenCount + toolUsePromptTokenCount cachedContentTokenCount / -          candidatesTokenCount + thoughtsTokenCount  thoughtsTokenCount
//	Bedrock Converse                    inputTokens + cacheRead + cacheWrite      cacheReadInputTokens / cacheWriteInputTokens  outputTokens              -
//
// Anthropic's and OpenAI Responses' objects share input_tokens/output_tokens;
// without Anthropic's cache fields the two conventions give the same numbers,
// so the keys decide and no provider name is needed.

// nativeUsage holds the keys of every supported shape; which ones are
// present says which shape it is.
type nativeUsage struct {
	// OpenAI Chat Completions
	PromptTokens        *int64 `json:"prompt_tokens"`
	CompletionTokens    *int64 `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
	// OpenAI Responses, and Anthropic Messages
	InputTokens        *int64 `json:"input_tokens"`
	OutputTokens       *int64 `json:"output_tokens"`
	InputTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokensDetails *struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	// Anthropic Messages
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	CacheCreation            *struct {
		Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	ServerToolUse *struct {
		WebSearchRequests int64 `json:"web_search_requests"`
	} `json:"server_tool_use"`
	ServiceTier *string `json:"service_tier"`
	// Bedrock Converse (camelCase as the API and boto3 return it)
	BedrockInput      *int64 `json:"inputTokens"`
	BedrockOutput     *int64 `json:"outputTokens"`
	BedrockCacheRead  *int64 `json:"cacheReadInputTokens"`
	BedrockCacheWrite *int64 `json:"cacheWriteInputTokens"`
	// Gemini usageMetadata (REST camelCase, and the Python SDK's snake_case)
	GeminiPrompt      *int64 `json:"promptTokenCount"`
	GeminiCandidates  *int64 `json:"candidatesTokenCount"`
	GeminiCached      *int64 `json:"cachedContentTokenCount"`
	GeminiThoughts    *int64 `json:"thoughtsTokenCount"`
	GeminiToolPrompt  *int64 `json:"toolUsePromptTokenCount"`
	GeminiPromptPy    *int64 `json:"prompt_token_count"`
	GeminiCandPy      *int64 `json:"candidates_token_count"`
	GeminiCachedPy    *int64 `json:"cached_content_token_count"`
	GeminiThoughtsPy  *int64 `json:"thoughts_token_count"`
	GeminiToolPromptP *int64 `json:"tool_use_prompt_token_count"`
}

// nativeResponse is the part of a whole SDK reply tokenmeter reads; other
// keys (choices, content, ...) are ignored.
type nativeResponse struct {
	ID               string          `json:"id"`
	ResponseID       string          `json:"responseId"`
	ResponseIDPy     string          `json:"response_id"`
	Model            string          `json:"model"`
	ModelVersion     string          `json:"modelVersion"`
	ModelVersionPy   string          `json:"model_version"`
	Created          json.RawMessage `json:"created"`    // OpenAI Chat: unix seconds
	CreatedAt        json.RawMessage `json:"created_at"` // OpenAI Responses: unix seconds
	ServiceTier      string          `json:"service_tier"`
	Usage            json.RawMessage `json:"usage"`
	UsageMetadata    json.RawMessage `json:"usageMetadata"`
	UsageMetadataPy  json.RawMessage `json:"usage_metadata"`
	ResponseMetadata struct {
		RequestID string `json:"RequestId"`
	} `json:"ResponseMetadata"` // boto3
	Metadata struct {
		RequestID string `json:"requestId"`
	} `json:"$metadata"` // AWS SDK for JavaScript
}

func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// applyNative maps the provider-native blocks of w onto w.UsageEvent. It
// reports problems instead of guessing.
func applyNative(w *usageWire, d *itemDefaults) []event.FieldError {
	ev := &w.UsageEvent
	var problems []event.FieldError
	bad := func(field, format string, args ...any) {
		problems = append(problems, event.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if ev.InputTokens != 0 || ev.OutputTokens != 0 || ev.CacheReadInputTokens != 0 || ev.CacheWriteInputTokens != 0 ||
		ev.CacheWrite1hInputTokens != 0 || ev.ReasoningTokens != 0 {
		bad("usage", "give either the canonical token fields or a provider usage object, not both")
		return problems
	}

	type block struct {
		field string
		raw   json.RawMessage
	}
	var blocks []block
	for _, b := range []block{{"usage", w.Usage}, {"usageMetadata", w.UsageMetadata}, {"usage_metadata", w.UsageMetaPy}} {
		if present(b.raw) {
			blocks = append(blocks, b)
		}
	}
	if present(w.Response) {
		var r nativeResponse
		if _, err := json.Parse(w.Response, &r, json.DontMatchCaseInsensitiveStructFields); err != nil {
			bad("response", "is not an SDK reply object: %v", err)
			return problems
		}
		if ev.Model == "" {
			ev.Model = firstNonEmpty(r.Model, r.ModelVersion, r.ModelVersionPy)
		}
		if d.ID == "" {
			d.ID = firstNonEmpty(r.ID, r.ResponseID, r.ResponseIDPy, r.ResponseMetadata.RequestID, r.Metadata.RequestID)
		}
		if d.Time.IsZero() {
			for _, c := range []json.RawMessage{r.Created, r.CreatedAt} {
				if s, err := strconv.ParseInt(string(bytes.TrimSpace(c)), 10, 64); err == nil && s > 0 {
					d.Time = time.Unix(s, 0)
					break
				}
			}
		}
		if ev.ServiceTier == "" {
			ev.ServiceTier = r.ServiceTier
		}
		for _, b := range []block{{"response.usage", r.Usage}, {"response.usageMetadata", r.UsageMetadata}, {"response.usage_metadata", r.UsageMetadataPy}} {
			if present(b.raw) {
				blocks = append(blocks, b)
			}
		}
	}
	switch len(blocks) {
	case 0:
		bad("usage", "no usage object found (expected usage, usageMetadata or response.usage)")
		return problems
	case 1:
	default:
		bad(blocks[1].field, "only one usage object per event; also got %s", blocks[0].field)
		return problems
	}
	field, raw := blocks[0].field, blocks[0].raw
	var u nativeUsage
	if _, err := json.Parse(raw, &u, json.DontMatchCaseInsensitiveStructFields); err != nil {
		bad(field, "is not a usage object: %v", err)
		return problems
	}
	if u.GeminiPrompt == nil && u.GeminiPromptPy != nil {
		u.GeminiPrompt, u.GeminiCandidates, u.GeminiCached, u.GeminiThoughts, u.GeminiToolPrompt =
			u.GeminiPromptPy, u.GeminiCandPy, u.GeminiCachedPy, u.GeminiThoughtsPy, u.GeminiToolPromptP
	} else if u.GeminiCandidates == nil && u.GeminiCandPy != nil {
		u.GeminiCandidates, u.GeminiCached, u.GeminiThoughts, u.GeminiToolPrompt =
			u.GeminiCandPy, u.GeminiCachedPy, u.GeminiThoughtsPy, u.GeminiToolPromptP
	}

	var shapes []string
	chat := u.PromptTokens != nil || u.CompletionTokens != nil
	gemini := u.GeminiPrompt != nil || u.GeminiCandidates != nil
	bedrock := u.BedrockInput != nil || u.BedrockOutput != nil
	anthropic := u.CacheCreationInputTokens != nil || u.CacheReadInputTokens != nil || u.CacheCreation != nil || u.ServerToolUse != nil
	responses := !anthropic && (u.InputTokens != nil || u.OutputTokens != nil)
	if anthropic && u.InputTokens == nil && u.OutputTokens == nil {
		anthropic = false // cache fields alone are not a usage object
	}
	for _, s := range []struct {
		on   bool
		name string
	}{{chat, "OpenAI Chat Completions"}, {responses, "OpenAI Responses"}, {anthropic, "Anthropic Messages"}, {gemini, "Gemini usageMetadata"}, {bedrock, "Bedrock Converse"}} {
		if s.on {
			shapes = append(shapes, s.name)
		}
	}
	if len(shapes) != 1 {
		if len(shapes) == 0 {
			bad(field, "not a known usage shape (OpenAI Chat Completions or Responses, Anthropic Messages, Gemini usageMetadata, Bedrock Converse)")
		} else {
			bad(field, "mixes keys of %s", strings.Join(shapes, " and "))
		}
		return problems
	}

	v := func(p *int64, name string) int64 {
		if p == nil {
			return 0
		}
		if *p < 0 {
			bad(field+"."+name, "must not be negative; got %d", *p)
			return 0
		}
		return *p
	}
	nonNeg := func(x int64, name string) int64 { return v(&x, name) }
	switch {
	case chat:
		ev.InputTokens = v(u.PromptTokens, "prompt_tokens")
		if u.PromptTokensDetails != nil {
			ev.CacheReadInputTokens = nonNeg(u.PromptTokensDetails.CachedTokens, "prompt_tokens_details.cached_tokens")
		}
		ev.OutputTokens = v(u.CompletionTokens, "completion_tokens")
		if u.CompletionTokensDetails != nil {
			ev.ReasoningTokens = nonNeg(u.CompletionTokensDetails.ReasoningTokens, "completion_tokens_details.reasoning_tokens")
		}
	case responses:
		ev.InputTokens = v(u.InputTokens, "input_tokens")
		if u.InputTokensDetails != nil {
			ev.CacheReadInputTokens = nonNeg(u.InputTokensDetails.CachedTokens, "input_tokens_details.cached_tokens")
		}
		ev.OutputTokens = v(u.OutputTokens, "output_tokens")
		if u.OutputTokensDetails != nil {
			ev.ReasoningTokens = nonNeg(u.OutputTokensDetails.ReasoningTokens, "output_tokens_details.reasoning_tokens")
		}
	case anthropic:
		// Anthropic's input_tokens excludes both cache reads and cache writes.
		uncached := v(u.InputTokens, "input_tokens")
		ev.CacheReadInputTokens = v(u.CacheReadInputTokens, "cache_read_input_tokens")
		if u.CacheCreationInputTokens != nil {
			ev.CacheWriteInputTokens = v(u.CacheCreationInputTokens, "cache_creation_input_tokens")
		} else if u.CacheCreation != nil {
			ev.CacheWriteInputTokens = nonNeg(u.CacheCreation.Ephemeral5m, "cache_creation.ephemeral_5m_input_tokens") +
				nonNeg(u.CacheCreation.Ephemeral1h, "cache_creation.ephemeral_1h_input_tokens")
		}
		if u.CacheCreation != nil {
			ev.CacheWrite1hInputTokens = nonNeg(u.CacheCreation.Ephemeral1h, "cache_creation.ephemeral_1h_input_tokens")
		}
		ev.InputTokens = uncached + ev.CacheReadInputTokens + ev.CacheWriteInputTokens
		ev.OutputTokens = v(u.OutputTokens, "output_tokens")
		if u.ServerToolUse != nil {
			ev.Units.WebSearches = nonNeg(u.ServerToolUse.WebSearchRequests, "server_tool_use.web_search_requests")
		}
		if u.ServiceTier != nil && ev.ServiceTier == "" {
			ev.ServiceTier = *u.ServiceTier
		}
	case gemini:
		// promptTokenCount includes cachedContentTokenCount; candidatesTokenCount
		// excludes thoughtsTokenCount; tool-use prompt tokens are billed as input.
		ev.InputTokens = v(u.GeminiPrompt, "promptTokenCount") + v(u.GeminiToolPrompt, "toolUsePromptTokenCount")
		ev.CacheReadInputTokens = v(u.GeminiCached, "cachedContentTokenCount")
		ev.ReasoningTokens = v(u.GeminiThoughts, "thoughtsTokenCount")
		ev.OutputTokens = v(u.GeminiCandidates, "candidatesTokenCount") + ev.ReasoningTokens
	case bedrock:
		// Bedrock's inputTokens excludes cache reads and writes (like Anthropic's).
		ev.CacheReadInputTokens = v(u.BedrockCacheRead, "cacheReadInputTokens")
		ev.CacheWriteInputTokens = v(u.BedrockCacheWrite, "cacheWriteInputTokens")
		ev.InputTokens = v(u.BedrockInput, "inputTokens") + ev.CacheReadInputTokens + ev.CacheWriteInputTokens
		ev.OutputTokens = v(u.BedrockOutput, "outputTokens")
	}
	return problems
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
