package ingest

import (
	"math/bits"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Fast path for the canonical UsageEvent.
//
// Nearly every record on usage.v1 (and nearly every item the collector
// receives) is a canonical event written by tokenmeter's own encoder or an SDK:
// known keys, each once, plain strings, small non-negative integers, a UTC
// event_time. decodeCanonical decodes exactly that subset of JSON without
// reflection and with one string allocation per event (all string fields are
// cut from one copy of the input). Anything outside the subset — an unknown
// or repeated key, an escape sequence, invalid UTF-8, null, a negative or
// non-integer number, a time with an offset, reported_cost, a provider-native
// usage object, a syntax error — makes it give up (ok=false) and the general
// decoder (segmentio/encoding with strict flags) decodes the input from
// scratch. So every rejection, with its reason and field path, still comes
// from one decoder; the fast path only ever produces events the general
// decoder would produce identically (FuzzCanonicalFastMatchesGeneral checks
// this on arbitrary input).

// Field bits, for repeated-key detection.
const (
	fEventID = 1 << iota
	fEventTime
	fTenant
	fProvider
	fModel
	fOperation
	fServiceTier
	fRegion
	fInputTokens
	fCacheRead
	fCacheWrite
	fCacheWrite1h
	fOutputTokens
	fReasoning
	fUnits
	fWorkflow
	fPromptTemplate
	fPromptVersion
	fUserID
	fTeam
	fApplication
	fEnvironment
	fAgentName
	fTraceID
	fSpanID
	fConversationID
	fSessionID
	fAttributes
	fUsageCompleteness
)

// decodeCanonical decodes b (already trimmed of surrounding white space)
// into out when b is in the canonical subset; ok=false otherwise, with out
// in an unspecified state. borrow: strings point into b instead of one copy
// of it (Options.BorrowInput).
func decodeCanonical(b []byte, borrow bool, out *event.UsageEvent) bool {
	if len(b) < 2 || b[0] != '{' {
		return false
	}
	var s string
	if borrow {
		s = unsafe.String(unsafe.SliceData(b), len(b))
	} else {
		s = string(b)
	}
	p := fastParser{s: s, i: 1}
	var seen uint32
	p.ws()
	if p.peek() == '}' {
		p.i++
		return p.end()
	}
	for {
		key, ok := p.str()
		if !ok || !p.colon() {
			return false
		}
		var bit uint32
		switch key {
		case "event_id":
			bit, ok = fEventID, p.strField(&out.EventID)
		case "event_time":
			bit = fEventTime
			var v string
			if v, ok = p.str(); ok {
				out.EventTime, ok = parseUTCTime(v)
			}
		case "tenant":
			bit, ok = fTenant, p.strField(&out.Tenant)
		case "provider":
			bit, ok = fProvider, p.strField(&out.Provider)
		case "model":
			bit, ok = fModel, p.strField(&out.Model)
		case "operation":
			bit, ok = fOperation, p.strField(&out.Operation)
		case "service_tier":
			bit, ok = fServiceTier, p.strField(&out.ServiceTier)
		case "region":
			bit, ok = fRegion, p.strField(&out.Region)
		case "input_tokens":
			bit, ok = fInputTokens, p.intField(&out.InputTokens)
		case "cache_read_input_tokens":
			bit, ok = fCacheRead, p.intField(&out.CacheReadInputTokens)
		case "cache_write_input_tokens":
			bit, ok = fCacheWrite, p.intField(&out.CacheWriteInputTokens)
		case "cache_write_1h_input_tokens":
			bit, ok = fCacheWrite1h, p.intField(&out.CacheWrite1hInputTokens)
		case "output_tokens":
			bit, ok = fOutputTokens, p.intField(&out.OutputTokens)
		case "reasoning_tokens":
			bit, ok = fReasoning, p.intField(&out.ReasoningTokens)
		case "units":
			bit, ok = fUnits, p.units(&out.Units)
		case "workflow":
			bit, ok = fWorkflow, p.strField(&out.Workflow)
		case "prompt_template":
			bit, ok = fPromptTemplate, p.strField(&out.PromptTemplate)
		case "prompt_version":
			bit, ok = fPromptVersion, p.strField(&out.PromptVersion)
		case "user_id":
			bit, ok = fUserID, p.strField(&out.UserID)
		case "team":
			bit, ok = fTeam, p.strField(&out.Team)
		case "application":
			bit, ok = fApplication, p.strField(&out.Application)
		case "environment":
			bit, ok = fEnvironment, p.strField(&out.Environment)
		case "agent_name":
			bit, ok = fAgentName, p.strField(&out.AgentName)
		case "trace_id":
			bit, ok = fTraceID, p.strField(&out.TraceID)
		case "span_id":
			bit, ok = fSpanID, p.strField(&out.SpanID)
		case "conversation_id":
			bit, ok = fConversationID, p.strField(&out.ConversationID)
		case "session_id":
			bit, ok = fSessionID, p.strField(&out.SessionID)
		case "attributes":
			bit, ok = fAttributes, p.attributes(&out.Attributes)
		case "usage_completeness":
			bit, ok = fUsageCompleteness, p.strField(&out.UsageCompleteness)
		default:
			// reported_cost, usage, usageMetadata, usage_metadata, response,
			// and unknown keys: the general decoder's business.
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
			p.ws()
		case '}':
			p.i++
			return p.end()
		default:
			return false
		}
	}
}

type fastParser struct {
	s string
	i int
}

func (p *fastParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// ws skips JSON white space.
func (p *fastParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// end: only JSON white space may follow the object.
func (p *fastParser) end() bool {
	p.ws()
	return p.i == len(p.s)
}

// colon consumes white space, ':' and white space after a key.
func (p *fastParser) colon() bool {
	p.ws()
	if p.peek() != ':' {
		return false
	}
	p.i++
	p.ws()
	return true
}

// str reads a string without escapes or control characters; non-ASCII
// bytes must be valid UTF-8 (the general decoder would replace invalid
// sequences).
func (p *fastParser) str() (string, bool) {
	if p.peek() != '"' {
		return "", false
	}
	start := p.i + 1
	ascii := true
	i := start
	// Eight bytes at a time: the lowest flagged byte of a block is the first
	// special one ('"', '\\', a control character or a non-ASCII byte).
	for i+8 <= len(p.s) {
		m := special8(load8(p.s, i))
		if m == 0 {
			i += 8
			continue
		}
		i += bits.TrailingZeros64(m) / 8
		switch c := p.s[i]; {
		case c == '"':
			v := p.s[start:i]
			p.i = i + 1
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			return v, true
		case c >= utf8.RuneSelf:
			ascii = false
			i++
		default: // '\\' or a control character
			return "", false
		}
	}
	for ; i < len(p.s); i++ {
		c := p.s[i]
		switch {
		case c == '"':
			v := p.s[start:i]
			p.i = i + 1
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special8 flags (high bit) the bytes of w that are '"', '\\', below 0x20
// or above 0x7f (the classic has-zero-byte and has-less-than tests). A
// borrow can also flag a byte above a special one, never below: the lowest
// flagged byte is the first special byte.
func special8(w uint64) uint64 {
	q := w ^ (lsb * '"')
	bs := w ^ (lsb * '\\')
	return (w | (q-lsb)&^q | (bs-lsb)&^bs | (w-lsb*0x20)&^w) & msb
}

// load8 reads s[i:i+8] as a little-endian word.
func load8(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func (p *fastParser) strField(dst *string) bool {
	v, ok := p.str()
	*dst = v
	return ok
}

// intField reads a non-negative integer of at most 18 digits (no sign,
// fraction or exponent; JSON forbids leading zeros).
func (p *fastParser) intField(dst *int64) bool {
	i := p.i
	var n int64
	for ; i < len(p.s) && i-p.i <= 18; i++ {
		c := p.s[i]
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	digits := i - p.i
	if digits == 0 || digits > 18 || (digits > 1 && p.s[p.i] == '0') {
		return false
	}
	if i < len(p.s) {
		switch p.s[i] {
		case '.', 'e', 'E', '-', '+':
			return false
		}
	}
	p.i = i
	*dst = n
	return true
}

func (p *fastParser) units(u *event.Units) bool {
	if p.peek() != '{' {
		return false
	}
	p.i++
	p.ws()
	if p.peek() == '}' {
		p.i++
		return true
	}
	var seen uint8
	for {
		key, ok := p.str()
		if !ok || !p.colon() {
			return false
		}
		var bit uint8
		switch key {
		case "images":
			bit, ok = 1, p.intField(&u.Images)
		case "audio_seconds":
			bit, ok = 2, p.intField(&u.AudioSeconds)
		case "requests":
			bit, ok = 4, p.intField(&u.Requests)
		case "tool_calls":
			bit, ok = 8, p.intField(&u.ToolCalls)
		case "web_searches":
			bit, ok = 16, p.intField(&u.WebSearches)
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
			p.ws()
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// attributes reads an object of string values. A repeated key keeps the
// last value, as the general decoder does; {} is an empty, non-nil map.
func (p *fastParser) attributes(dst *map[string]string) bool {
	if p.peek() != '{' {
		return false
	}
	p.i++
	p.ws()
	m := make(map[string]string)
	*dst = m
	if p.peek() == '}' {
		p.i++
		return true
	}
	for {
		k, ok := p.str()
		if !ok || !p.colon() {
			return false
		}
		v, ok := p.str()
		if !ok {
			return false
		}
		if _, dup := m[k]; dup {
			return false // a repeated key is refused by the general path
		}
		m[k] = v
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
			p.ws()
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// parseUTCTime reads YYYY-MM-DDTHH:MM:SS[.fraction]Z (1–9 fraction digits),
// the form tokenmeter writes; other RFC 3339 forms are left to the general
// decoder. Out-of-range fields (month 13, 30 February, second 60) fail.
func parseUTCTime(s string) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	year, ok1 := digitsN(s[0:4])
	month, ok2 := digitsN(s[5:7])
	day, ok3 := digitsN(s[8:10])
	hour, ok4 := digitsN(s[11:13])
	minute, ok5 := digitsN(s[14:16])
	sec, ok6 := digitsN(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, false
	}
	if year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := s[19 : len(s)-1]; frac != "" {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		f, ok := digitsN(frac[1:])
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			f *= 10
		}
		nsec = f
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

func digitsN(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
