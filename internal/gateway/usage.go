package gateway

import (
	"bytes"
	"encoding/json"
)

// reply is what the gateway learns from a provider's answer: the response
// id (the usage event's id), the model that ran and the provider-native
// usage object, mapped to canonical counts by internal/ingest like any
// other provider usage.
type reply struct {
	id     string
	model  string
	tier   string
	usage  json.RawMessage
	deltas int64 // streamed content deltas seen (≈ output tokens when the stream is cut)
}

// replyBody is the part of a non-streamed answer (or a stream event's
// message/response object) that is read.
type replyBody struct {
	ID          string          `json:"id"`
	Model       string          `json:"model"`
	ServiceTier string          `json:"service_tier"`
	Usage       json.RawMessage `json:"usage"`
}

func (r *reply) take(b replyBody) {
	if b.ID != "" && r.id == "" {
		r.id = b.ID
	}
	if b.Model != "" {
		r.model = b.Model
	}
	if b.ServiceTier != "" {
		r.tier = b.ServiceTier
	}
	if present(b.Usage) {
		r.usage = mergeUsage(r.usage, b.Usage)
	}
}

// parseReply reads a whole JSON answer.
func parseReply(body []byte) reply {
	var b replyBody
	var r reply
	if json.Unmarshal(body, &b) == nil {
		r.take(b)
	}
	return r
}

// streamEvent is one SSE data payload of any of the four APIs.
//
//	OpenAI chat:      {id, model, choices:[{delta}], usage (last chunk, include_usage)}
//	OpenAI responses: {type: response.created|response.completed, response:{id, model, usage}}, {type: response.output_text.delta}
//	Anthropic:        {type: message_start, message:{id, model, usage}}, {type: content_block_delta},
//	                  {type: message_delta, usage:{output_tokens, ...}} (cumulative counts)
type streamEvent struct {
	replyBody
	Type     string          `json:"type"`
	Message  *replyBody      `json:"message"`
	Response *replyBody      `json:"response"`
	Choices  json.RawMessage `json:"choices"`
}

// streamScanner follows an SSE stream line by line as it passes through.
type streamScanner struct {
	reply
	partial []byte
}

// feed takes the next bytes of the stream.
func (s *streamScanner) feed(p []byte) {
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			// A line longer than 1 MiB is not an event we can read; drop it.
			if len(s.partial) > 1<<20 {
				s.partial = s.partial[:0]
			}
			return
		}
		s.line(bytes.TrimRight(s.partial[:i], "\r"))
		s.partial = s.partial[i+1:]
	}
}

func (s *streamScanner) line(l []byte) {
	data, ok := bytes.CutPrefix(l, []byte("data:"))
	if !ok {
		return
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return // "[DONE]"
	}
	var ev streamEvent
	if json.Unmarshal(data, &ev) != nil {
		return
	}
	switch {
	case ev.Message != nil:
		s.take(*ev.Message)
	case ev.Response != nil:
		s.take(*ev.Response)
	case ev.Type == "message_delta":
		// Anthropic's running totals: overlay them on message_start's.
		if present(ev.Usage) {
			s.usage = mergeUsage(s.usage, ev.Usage)
		}
	default:
		s.take(ev.replyBody)
	}
	switch {
	case ev.Type == "content_block_delta" || ev.Type == "response.output_text.delta":
		s.deltas++
	case ev.Type == "" && len(ev.Choices) > 2: // a chat chunk with choices (not "[]")
		s.deltas++
	}
}

// mergeUsage overlays the keys of next on prev (Anthropic's message_delta
// carries cumulative counts for some keys only).
func mergeUsage(prev, next json.RawMessage) json.RawMessage {
	if !present(prev) {
		return append(json.RawMessage(nil), next...)
	}
	var a, b map[string]json.RawMessage
	if json.Unmarshal(prev, &a) != nil || json.Unmarshal(next, &b) != nil {
		return append(json.RawMessage(nil), next...)
	}
	for k, v := range b {
		if present(v) {
			a[k] = v
		}
	}
	out, err := json.Marshal(a)
	if err != nil {
		return next
	}
	return out
}

func present(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}
