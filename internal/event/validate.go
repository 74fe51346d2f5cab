package event

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// FieldError says which field of an event is wrong and why. Field is a JSON
// path relative to the event (for example "cache_read_input_tokens").
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
	// Limit names the breached limit (limits.Breach*), when a limit was breached.
	Limit string `json:"limit,omitempty"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Reason }

// ValidationError lists every problem found in one event.
type ValidationError struct {
	Problems []FieldError `json:"problems"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return "invalid event: " + strings.Join(parts, "; ")
}

type problems []FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// limit records a breach of the named limit.
func (p *problems) limit(field, breach, format string, args ...any) {
	*p = append(*p, FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Limit: breach})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Problems: p}
}

// maxClockSkew bounds how far in the future an event_time may be.
const maxClockSkew = 24 * time.Hour

// Validate checks a usage event against the v1 contract with the default
// limits (limits.Default); ValidateWithin takes configured ones.
func (e *UsageEvent) Validate(now time.Time) error {
	return e.ValidateWithin(now, limits.Default())
}

// ValidateWithin checks a usage event against the v1 contract. It never
// "fixes" an event: inconsistent counts (a subset larger than its total) are
// rejected, as DESIGN.md invariant 4 requires. now bounds event_time from
// above; lim bounds string lengths, attributes and counts (DESIGN.md
// invariant 8). Sums of counts are computed without overflow.
func (e *UsageEvent) ValidateWithin(now time.Time, lim limits.Limits) error {
	lim.ApplyDefaults()
	var p problems
	if e.EventID == "" {
		p.add("event_id", "is required")
	} else if len(e.EventID) > 256 {
		p.add("event_id", "is longer than 256 bytes")
	}
	checkTime(&p, e.EventTime, now)
	if e.Tenant == "" {
		p.add("tenant", "is required")
	}
	if e.Provider == "" {
		p.add("provider", "is required")
	}
	if e.Model == "" {
		p.add("model", "is required")
	}
	switch e.ServiceTier {
	case "", ServiceTierStandard, ServiceTierBatch, ServiceTierFlex, ServiceTierPriority:
	default:
		p.add("service_tier", "must be one of standard, batch, flex, priority; got %q", truncate(e.ServiceTier))
	}
	if e.UsageCompleteness != "" && !slices.Contains(UsageCompletenessValues, e.UsageCompleteness) {
		p.add("usage_completeness", "must be one of %s; got %q", strings.Join(UsageCompletenessValues, ", "), truncate(e.UsageCompleteness))
	}
	for _, f := range [...]struct {
		name, v string
	}{
		{"tenant", e.Tenant}, {"provider", e.Provider}, {"model", e.Model}, {"operation", e.Operation},
		{"region", e.Region}, {"workflow", e.Workflow}, {"prompt_template", e.PromptTemplate},
		{"prompt_version", e.PromptVersion}, {"user_id", e.UserID}, {"team", e.Team},
		{"application", e.Application}, {"environment", e.Environment}, {"agent_name", e.AgentName},
		{"trace_id", e.TraceID}, {"span_id", e.SpanID}, {"conversation_id", e.ConversationID},
		{"session_id", e.SessionID},
	} {
		checkString(&p, f.name, f.v, lim)
	}
	checkAttributes(&p, e.Attributes, lim)
	counts := [...]struct {
		name string
		v    int64
	}{
		{"input_tokens", e.InputTokens},
		{"cache_read_input_tokens", e.CacheReadInputTokens},
		{"cache_write_input_tokens", e.CacheWriteInputTokens},
		{"cache_write_1h_input_tokens", e.CacheWrite1hInputTokens},
		{"output_tokens", e.OutputTokens},
		{"reasoning_tokens", e.ReasoningTokens},
		{"units.images", e.Units.Images},
		{"units.audio_seconds", e.Units.AudioSeconds},
		{"units.requests", e.Units.Requests},
		{"units.tool_calls", e.Units.ToolCalls},
		{"units.web_searches", e.Units.WebSearches},
	}
	for _, c := range counts {
		switch {
		case c.v < 0:
			p.add(c.name, "must not be negative; got %d", c.v)
		case c.v > lim.MaxTokens:
			p.limit(c.name, limits.BreachTokens, "%d exceeds limits.%s (%d per event)", c.v, limits.BreachTokens, lim.MaxTokens)
		}
	}
	// AddTokens fails on overflow (or a negative part, reported above), so a
	// huge count can never wrap around into a "consistent" small sum.
	if e.CacheReadInputTokens >= 0 && e.CacheWriteInputTokens >= 0 {
		if cached, ok := limits.AddTokens(e.CacheReadInputTokens, e.CacheWriteInputTokens); !ok || cached > e.InputTokens {
			p.add("cache_read_input_tokens", "cache reads (%d) plus cache writes (%d) exceed input_tokens (%d), which includes them",
				e.CacheReadInputTokens, e.CacheWriteInputTokens, e.InputTokens)
		}
	}
	if e.CacheWrite1hInputTokens > e.CacheWriteInputTokens {
		p.add("cache_write_1h_input_tokens", "(%d) exceeds cache_write_input_tokens (%d), which includes it",
			e.CacheWrite1hInputTokens, e.CacheWriteInputTokens)
	}
	if e.ReasoningTokens > e.OutputTokens {
		p.add("reasoning_tokens", "(%d) exceeds output_tokens (%d), which includes it", e.ReasoningTokens, e.OutputTokens)
	}
	if e.ReportedCost != nil {
		checkMoney(&p, "reported_cost", *e.ReportedCost)
	}
	return p.err()
}

// checkString bounds one string field and requires valid UTF-8 (invalid
// bytes would be replaced by U+FFFD downstream, so distinct ids could collide).
func checkString(p *problems, field, v string, lim limits.Limits) {
	if len(v) > lim.MaxStringBytes {
		p.limit(field, limits.BreachString, "is %d bytes, over limits.%s (%d)", len(v), limits.BreachString, lim.MaxStringBytes)
	} else if !utf8.ValidString(v) {
		p.limit(field, limits.BreachUTF8, "is not valid UTF-8")
	}
}

func checkAttributes(p *problems, attrs map[string]string, lim limits.Limits) {
	if len(attrs) > lim.MaxAttributes {
		p.limit("attributes", limits.BreachAttributes, "has %d entries, over limits.%s (%d)", len(attrs), limits.BreachAttributes, lim.MaxAttributes)
		return
	}
	for k, v := range attrs {
		if len(k) > lim.MaxStringBytes || !utf8.ValidString(k) {
			checkString(p, "attributes", k, lim)
			continue
		}
		checkString(p, "attributes."+k, v, lim)
	}
}

// truncate keeps a quoted bad value short in an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Validate checks an outcome event against the v1 contract with the
// default limits; ValidateWithin takes configured ones.
func (o *OutcomeEvent) Validate(now time.Time) error {
	return o.ValidateWithin(now, limits.Default())
}

// ValidateWithin checks an outcome event against the v1 contract and lim.
func (o *OutcomeEvent) ValidateWithin(now time.Time, lim limits.Limits) error {
	lim.ApplyDefaults()
	var p problems
	if len(o.OutcomeID) > 256 {
		p.add("outcome_id", "is longer than 256 bytes")
	} else {
		checkString(&p, "outcome_id", o.OutcomeID, lim)
	}
	for _, f := range [...]struct {
		name, v string
	}{
		{"tenant", o.Tenant}, {"workflow", o.Workflow}, {"outcome_type", o.OutcomeType},
		{"trace_id", o.TraceID}, {"conversation_id", o.ConversationID},
	} {
		checkString(&p, f.name, f.v, lim)
	}
	checkAttributes(&p, o.Attributes, lim)
	if o.Count > lim.MaxTokens {
		p.limit("count", limits.BreachTokens, "%d exceeds limits.%s (%d per event)", o.Count, limits.BreachTokens, lim.MaxTokens)
	}
	if o.OutcomeID == "" {
		p.add("outcome_id", "is required")
	}
	checkTime(&p, o.EventTime, now)
	if o.Tenant == "" {
		p.add("tenant", "is required")
	}
	if o.Workflow == "" {
		p.add("workflow", "is required")
	}
	if o.OutcomeType == "" {
		p.add("outcome_type", "is required")
	}
	if o.Count <= 0 {
		p.add("count", "must be at least 1; got %d", o.Count)
	}
	if o.Value != nil {
		checkMoney(&p, "value", *o.Value)
	}
	return p.err()
}

func checkTime(p *problems, t, now time.Time) {
	switch {
	case t.IsZero():
		p.add("event_time", "is required (RFC 3339 UTC, millisecond precision)")
	case t.Year() < 2000:
		p.add("event_time", "is before 2000: %s", t.UTC().Format(time.RFC3339))
	case !now.IsZero() && t.After(now.Add(maxClockSkew)):
		p.add("event_time", "is more than %s in the future: %s", maxClockSkew, t.UTC().Format(time.RFC3339))
	}
}

func checkMoney(p *problems, field string, m Money) {
	if m.Amount.IsNegative() {
		p.add(field+".amount", "must not be negative")
	}
	if len(m.Currency) != 3 || strings.ToUpper(m.Currency) != m.Currency {
		p.add(field+".currency", "must be a 3-letter upper-case ISO 4217 code; got %q", m.Currency)
	}
}
