// Package gatewaytest is a fake OpenAI/Anthropic provider for the
// gateway's tests and benchmark: the four APIs, streamed and not, with
// usage computed by a rule of its own (input = body bytes / 4, output = the
// request's cap up to 24 tokens, one streamed delta per output token; or
// what the X-Fake-Usage header asks for, within what the body and the cap
// allow) and a
// record of what it "billed" for each response id, so a test can compare
// tokenmeter's accounting with the provider's independently.
package gatewaytest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Billed is one answered call as the provider counts it.
type Billed struct {
	ID           string
	API          string
	Model        string
	InputTokens  int64
	OutputTokens int64
}

// Provider is the fake. Zero value is ready; set the knobs before use.
type Provider struct {
	// FailWith answers every call with this status when non-zero.
	FailWith int
	// StallAfter, when > 0, makes a stream send that many deltas and then
	// wait until the client goes away (a disconnect mid-stream).
	StallAfter int
	// MaxOutput caps the output tokens (default 24).
	MaxOutput int64
	// Delay is slept before answering (latency of a real provider).
	Delay time.Duration

	mu     sync.Mutex
	prefix string // unique per Provider, so response ids never repeat across runs
	billed []Billed
	seq    atomic.Int64
	// Stalled is closed... counts stalled streams whose client went away.
	Abandoned atomic.Int64
}

// Billed returns every call answered so far.
func (p *Provider) Billed() []Billed {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Billed(nil), p.billed...)
}

type request struct {
	Model               string `json:"model"`
	Stream              bool   `json:"stream"`
	MaxTokens           *int64 `json:"max_tokens"`
	MaxCompletionTokens *int64 `json:"max_completion_tokens"`
	MaxOutputTokens     *int64 `json:"max_output_tokens"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if p.Delay > 0 {
		time.Sleep(p.Delay)
	}
	api := strings.TrimPrefix(r.URL.Path, "/v1/")
	if r.URL.Path == "/v1beta/openai/chat/completions" {
		api = "chat/completions" // Gemini's OpenAI-compatible endpoint
	}
	if p.FailWith != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(p.FailWith)
		fmt.Fprintf(w, `{"error":{"message":"fake provider failure","type":"server_error","param":null,"code":null}}`)
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	in := int64(len(body)) / 4
	out := p.MaxOutput
	if out == 0 {
		out = 24
	}
	for _, c := range []*int64{req.MaxCompletionTokens, req.MaxOutputTokens, req.MaxTokens} {
		if c != nil && *c < out {
			out = *c
		}
	}
	if api == "embeddings" {
		out = 0
	}
	var u usage
	u.in, u.out = in, out
	if h := r.Header.Get("X-Fake-Usage"); h != "" {
		// in,out,cache_read,cache_write,reasoning — bounded by what the call
		// could really use: input by the body's bytes, output by its cap.
		var v [5]int64
		fmt.Sscanf(h, "%d,%d,%d,%d,%d", &v[0], &v[1], &v[2], &v[3], &v[4])
		u = usage{in: min(v[0], int64(len(body))), out: v[1], cacheRead: v[2], cacheWrite: v[3], reasoning: v[4]}
		for _, c := range []*int64{req.MaxCompletionTokens, req.MaxOutputTokens, req.MaxTokens} {
			if c != nil && *c < u.out {
				u.out = *c
			}
		}
		u.cacheRead = min(u.cacheRead, u.in)
		u.cacheWrite = min(u.cacheWrite, u.in-u.cacheRead)
		u.reasoning = min(u.reasoning, u.out)
		in, out = u.in, u.out
	}
	n := p.seq.Add(1)
	p.mu.Lock()
	if p.prefix == "" {
		p.prefix = strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	pre := p.prefix
	p.mu.Unlock()
	var id string
	switch api {
	case "chat/completions":
		id = fmt.Sprintf("chatcmpl-fake%s%06d", pre, n)
	case "responses":
		id = fmt.Sprintf("resp_fake%s%06d", pre, n)
	case "messages":
		id = fmt.Sprintf("msg_fake%s%06d", pre, n)
	case "embeddings":
		id = fmt.Sprintf("emb-fake%s%06d", pre, n)
	default:
		w.WriteHeader(http.StatusNotFound)
		return
	}
	b := Billed{ID: id, API: api, Model: req.Model, InputTokens: in, OutputTokens: out}
	if req.Stream {
		if !p.stream(w, r, api, id, req, u) {
			p.Abandoned.Add(1)
			return
		}
	} else {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(whole(api, id, req.Model, u))
	}
	p.mu.Lock()
	p.billed = append(p.billed, b)
	p.mu.Unlock()
}

func words(n int64) string {
	var sb strings.Builder
	for i := int64(0); i < n; i++ {
		fmt.Fprintf(&sb, "w%d ", i)
	}
	return sb.String()
}

type usage struct{ in, out, cacheRead, cacheWrite, reasoning int64 }

func (u usage) chat() map[string]any {
	return map[string]any{"prompt_tokens": u.in, "completion_tokens": u.out, "total_tokens": u.in + u.out,
		"prompt_tokens_details": map[string]any{"cached_tokens": u.cacheRead}, "completion_tokens_details": map[string]any{"reasoning_tokens": u.reasoning}}
}

func (u usage) anthropic() map[string]any {
	return map[string]any{"input_tokens": u.in - u.cacheRead - u.cacheWrite, "output_tokens": u.out,
		"cache_read_input_tokens": u.cacheRead, "cache_creation_input_tokens": u.cacheWrite}
}

func whole(api, id, model string, u usage) any {
	in, out := u.in, u.out
	now := time.Now().Unix()
	switch api {
	case "chat/completions":
		return map[string]any{"id": id, "object": "chat.completion", "created": now, "model": model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": words(out)}}},
			"usage": u.chat()}
	case "responses":
		return map[string]any{"id": id, "object": "response", "created_at": now, "model": model, "status": "completed",
			"output": []any{map[string]any{"type": "message", "id": "msg_" + id, "role": "assistant", "status": "completed",
				"content": []any{map[string]any{"type": "output_text", "text": words(out), "annotations": []any{}}}}},
			"usage": map[string]any{"input_tokens": in, "output_tokens": out, "total_tokens": in + out,
				"input_tokens_details": map[string]any{"cached_tokens": u.cacheRead}, "output_tokens_details": map[string]any{"reasoning_tokens": u.reasoning}}}
	case "embeddings":
		return map[string]any{"object": "list", "model": model,
			"data":  []any{map[string]any{"object": "embedding", "index": 0, "embedding": []float64{0.1, 0.2, 0.3}}},
			"usage": map[string]any{"prompt_tokens": in, "total_tokens": in}}
	}
	return map[string]any{"id": id, "type": "message", "role": "assistant", "model": model,
		"content":     []any{map[string]any{"type": "text", "text": words(out)}},
		"stop_reason": "end_turn", "stop_sequence": nil,
		"usage": u.anthropic()}
}

// stream answers as SSE; false if the client went away before the end.
func (p *Provider) stream(w http.ResponseWriter, r *http.Request, api, id string, req request, u usage) bool {
	out := u.out
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl := w.(http.Flusher)
	send := func(event string, v any) bool {
		b, _ := json.Marshal(v)
		if event != "" {
			fmt.Fprintf(w, "event: %s\n", event)
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		fl.Flush()
		return r.Context().Err() == nil
	}
	stall := func(i int64) bool {
		if p.StallAfter > 0 && i == int64(p.StallAfter) {
			<-r.Context().Done()
			return true
		}
		return false
	}
	now := time.Now().Unix()
	switch api {
	case "chat/completions":
		for i := int64(0); i < out; i++ {
			if stall(i) {
				return false
			}
			send("", map[string]any{"id": id, "object": "chat.completion.chunk", "created": now, "model": req.Model,
				"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": fmt.Sprintf("w%d ", i)}, "finish_reason": nil}}})
		}
		send("", map[string]any{"id": id, "object": "chat.completion.chunk", "created": now, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{}, "finish_reason": "stop"}}})
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			send("", map[string]any{"id": id, "object": "chat.completion.chunk", "created": now, "model": req.Model, "choices": []any{},
				"usage": u.chat()})
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	case "responses":
		resp := whole(api, id, req.Model, u).(map[string]any)
		created := map[string]any{"id": id, "object": "response", "created_at": now, "model": req.Model, "status": "in_progress", "output": []any{}}
		send("response.created", map[string]any{"type": "response.created", "sequence_number": 0, "response": created})
		item := map[string]any{"type": "message", "id": "msg_" + id, "role": "assistant", "status": "in_progress", "content": []any{}}
		send("response.output_item.added", map[string]any{"type": "response.output_item.added", "sequence_number": 0, "output_index": 0, "item": item})
		send("response.content_part.added", map[string]any{"type": "response.content_part.added", "sequence_number": 0, "item_id": "msg_" + id,
			"output_index": 0, "content_index": 0, "part": map[string]any{"type": "output_text", "text": "", "annotations": []any{}}})
		for i := int64(0); i < out; i++ {
			if stall(i) {
				return false
			}
			send("response.output_text.delta", map[string]any{"type": "response.output_text.delta", "sequence_number": i + 1,
				"item_id": "msg_" + id, "output_index": 0, "content_index": 0, "delta": fmt.Sprintf("w%d ", i)})
		}
		done := resp["output"].([]any)[0].(map[string]any)
		send("response.output_text.done", map[string]any{"type": "response.output_text.done", "sequence_number": out + 1, "item_id": "msg_" + id,
			"output_index": 0, "content_index": 0, "text": words(out)})
		send("response.content_part.done", map[string]any{"type": "response.content_part.done", "sequence_number": out + 1, "item_id": "msg_" + id,
			"output_index": 0, "content_index": 0, "part": done["content"].([]any)[0]})
		send("response.output_item.done", map[string]any{"type": "response.output_item.done", "sequence_number": out + 1, "output_index": 0, "item": done})
		send("response.completed", map[string]any{"type": "response.completed", "sequence_number": out + 1, "response": resp})
	case "messages":
		send("message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": id, "type": "message", "role": "assistant",
			"model": req.Model, "content": []any{}, "stop_reason": nil, "stop_sequence": nil,
			"usage": usage{in: u.in, out: 1, cacheRead: u.cacheRead, cacheWrite: u.cacheWrite}.anthropic()}})
		send("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}})
		for i := int64(0); i < out; i++ {
			if stall(i) {
				return false
			}
			send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": fmt.Sprintf("w%d ", i)}})
		}
		send("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
		send("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil},
			"usage": map[string]any{"output_tokens": out}})
		send("message_stop", map[string]any{"type": "message_stop"})
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
	return true
}
