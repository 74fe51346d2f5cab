package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// Reasons an item is rejected. They label the rejection metrics, appear in
// partial-batch answers and become DLQ reasons, so they are stable API.
const (
	ReasonInvalidJSON    = "invalid_json"    // the item is not a JSON object
	ReasonUnknownField   = "unknown_field"   // a field the v1 schema does not have (typos would silently zero counts)
	ReasonInvalidField   = "invalid_field"   // a field has the wrong type or fails validation
	ReasonTenantMismatch = "tenant_mismatch" // the item names a tenant other than the authenticated one
	ReasonInvalidUsage   = "invalid_usage"   // a provider-native usage object or GenAI span cannot be mapped
)

// ItemError says why one item (event, span, record) was rejected.
type ItemError struct {
	Reason   string             `json:"reason"`
	Problems []event.FieldError `json:"problems,omitempty"`
}

// Permanent says retrying cannot help (internal/retry's classification).
func (e *ItemError) Permanent() bool { return true }

func (e *ItemError) Error() string {
	if len(e.Problems) == 0 {
		return e.Reason
	}
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return e.Reason + ": " + strings.Join(parts, "; ")
}

// Options are the per-request facts a decoder needs beyond the bytes.
type Options struct {
	// Now bounds event_time from above (see event.Validate). Required.
	Now time.Time
	// Tenant is the authenticated tenant. Empty: the item must name its
	// tenant (the Kafka path). Set: an item without tenant gets it and an
	// item naming another tenant fails with ReasonTenantMismatch.
	Tenant string
	// BorrowInput lets the decoded event's strings point into the input bytes
	// instead of copying them (fewer allocations). Set it only when the input
	// is neither changed nor reused while the event is in use: the collector
	// does, because it marshals each event before its request buffer is reused.
	BorrowInput bool
	// Limits bound depth, strings, attributes and counts (zero: the
	// defaults, limits.Default).
	Limits limits.Limits
}

// itemDefaults are envelope facts (a CloudEvent's id and time) used when the
// item itself does not say.
type itemDefaults struct {
	ID   string
	Time time.Time
}

// usageWire is the accepted JSON: a canonical UsageEvent, optionally with a
// provider-native usage object (or a whole SDK reply) instead of the token
// fields.
type usageWire struct {
	event.UsageEvent
	Usage         json.RawMessage `json:"usage"`
	UsageMetadata json.RawMessage `json:"usageMetadata"`
	UsageMetaPy   json.RawMessage `json:"usage_metadata"`
	Response      json.RawMessage `json:"response"`
}

// outcomeWire lets count default to 1 when it is absent.
type outcomeWire struct {
	event.OutcomeEvent
	Count *int64 `json:"count"`
}

// DecodeUsage decodes and validates one canonical UsageEvent (JSON, as apps
// write it to tokenmeter.usage.v1 and as the collector produces it). It
// applies the same normalisation and validation as every other ingest path:
// provider aliases, event_time in UTC at millisecond precision, provider-native
// usage objects, event.(*UsageEvent).Validate(now). The record must name its
// tenant. A rejection is an *ItemError (errors.As) whose Reason suits a DLQ
// record and whose Problems carry field paths.
func DecodeUsage(b []byte, now time.Time) (event.UsageEvent, error) {
	var ev event.UsageEvent
	err := decodeUsageItem(b, Options{Now: now}, itemDefaults{}, &ev)
	if err != nil {
		return ev, err
	}
	return ev, nil
}

// DecodeUsageInto is DecodeUsage writing into *out (no copy of the event on
// return; the processor decodes into its reusable priced event). On error
// *out holds what could be decoded, as DecodeUsage returns it.
func DecodeUsageInto(b []byte, now time.Time, out *event.UsageEvent) error {
	return decodeUsageItem(b, Options{Now: now}, itemDefaults{}, out)
}

// DecodeUsageWithin is DecodeUsageInto with configured limits (the
// processor runs with the pipeline's `limits:`).
func DecodeUsageWithin(b []byte, now time.Time, lim limits.Limits, out *event.UsageEvent) error {
	return decodeUsageItem(b, Options{Now: now, Limits: lim}, itemDefaults{}, out)
}

// DecodeOutcome is DecodeUsage for tokenmeter.outcomes.v1 records.
func DecodeOutcome(b []byte, now time.Time) (event.OutcomeEvent, error) {
	var ev event.OutcomeEvent
	err := decodeOutcomeItem(b, Options{Now: now}, itemDefaults{}, &ev)
	return ev, err
}

// DecodeUsageItem decodes one item of a request body with the request's
// options; the collector's HTTP path uses it through DecodeUsageBody.
func decodeUsageItem(b []byte, o Options, d itemDefaults, out *event.UsageEvent) error {
	return decodeUsageItemWith(b, o, d, out, true)
}

// decodeUsageItemWith is decodeUsageItem with the canonical fast path
// switchable (off only in the differential tests).
func decodeUsageItemWith(b []byte, o Options, d itemDefaults, out *event.UsageEvent, fast bool) error {
	*out = event.UsageEvent{}
	lim := o.Limits.OrDefault()
	var problems []event.FieldError
	if !fast || !decodeCanonical(bytes.TrimSpace(b), o.BorrowInput, out) {
		*out = event.UsageEvent{}
		// The fast path takes no nesting, no repeated key and no invalid
		// UTF-8; anything else is scanned before the general parser runs.
		if err := checkItemJSON(b, lim); err != nil {
			return err
		}
		var err error
		if problems, err = decodeUsageGeneral(b, o, &d, out); err != nil {
			return err
		}
	}
	ev := out
	if ev.EventID == "" {
		ev.EventID = d.ID
	}
	// No default from the receive time: a retried event must carry the same
	// content, or the processor's dedupe sees a conflict instead of a duplicate.
	if ev.EventTime.IsZero() {
		ev.EventTime = d.Time
	}
	ev.EventTime = NormaliseTime(ev.EventTime)
	ev.Provider = NormaliseProvider(ev.Provider)
	ev.ServiceTier = normaliseServiceTier(ev.ServiceTier)
	if err := checkTenant(&ev.Tenant, o.Tenant); err != nil {
		return err
	}
	if err := ev.ValidateWithin(o.Now, lim); err != nil {
		var ve *event.ValidationError
		if errors.As(err, &ve) {
			problems = append(problems, ve.Problems...)
		} else {
			problems = append(problems, event.FieldError{Reason: err.Error()})
		}
	}
	if len(problems) > 0 {
		return &ItemError{Reason: ReasonInvalidField, Problems: problems}
	}
	return nil
}

// decodeUsageGeneral decodes any accepted usage JSON (canonical or with a
// provider-native usage object) into out; on a decoding error out is left
// zero.
func decodeUsageGeneral(b []byte, o Options, d *itemDefaults, out *event.UsageEvent) ([]event.FieldError, error) {
	var w usageWire
	if err := strictUnmarshal(b, &w, o.BorrowInput); err != nil {
		return nil, err
	}
	var problems []event.FieldError
	if len(w.Usage) > 0 || len(w.UsageMetadata) > 0 || len(w.UsageMetaPy) > 0 || len(w.Response) > 0 {
		problems = applyNative(&w, d)
	}
	*out = w.UsageEvent
	return problems, nil
}

func decodeOutcomeItem(b []byte, o Options, d itemDefaults, out *event.OutcomeEvent) error {
	*out = event.OutcomeEvent{}
	lim := o.Limits.OrDefault()
	if err := checkItemJSON(b, lim); err != nil {
		return err
	}
	var w outcomeWire
	if err := strictUnmarshal(b, &w, o.BorrowInput); err != nil {
		return err
	}
	*out = w.OutcomeEvent
	ev := out
	ev.Count = 1
	if w.Count != nil {
		ev.Count = *w.Count
	}
	if ev.OutcomeID == "" {
		ev.OutcomeID = d.ID
	}
	// No default from the receive time: a retried event must carry the same
	// content, or the processor's dedupe sees a conflict instead of a duplicate.
	if ev.EventTime.IsZero() {
		ev.EventTime = d.Time
	}
	ev.EventTime = NormaliseTime(ev.EventTime)
	if err := checkTenant(&ev.Tenant, o.Tenant); err != nil {
		return err
	}
	if err := ev.ValidateWithin(o.Now, lim); err != nil {
		var ve *event.ValidationError
		if errors.As(err, &ve) {
			return &ItemError{Reason: ReasonInvalidField, Problems: ve.Problems}
		}
		return &ItemError{Reason: ReasonInvalidField, Problems: []event.FieldError{{Reason: err.Error()}}}
	}
	return nil
}

// NormaliseTime returns t in UTC truncated to millisecond precision, the
// canonical event_time form (ClickHouse stores milliseconds).
func NormaliseTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Millisecond)
}

func checkTenant(evTenant *string, authTenant string) error {
	if authTenant == "" {
		return nil
	}
	if *evTenant == "" {
		*evTenant = authTenant
		return nil
	}
	if *evTenant != authTenant {
		return &ItemError{Reason: ReasonTenantMismatch, Problems: []event.FieldError{{
			Field: "tenant", Reason: fmt.Sprintf("%q is not the tenant of the bearer token", *evTenant)}}}
	}
	return nil
}

// strictUnmarshal decodes exactly one JSON object into v, rejecting unknown
// fields: a misspelt token field would otherwise be metered as zero.
func strictUnmarshal(b []byte, v any, borrow bool) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return &ItemError{Reason: ReasonInvalidJSON, Problems: []event.FieldError{{Reason: "not a JSON object"}}}
	}
	flags := strictFlags
	if borrow {
		flags |= json.DontCopyString
	}
	rest, err := json.Parse(b, v, flags)
	if err != nil {
		return jsonItemError(err)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return &ItemError{Reason: ReasonInvalidJSON, Problems: []event.FieldError{{Reason: "data after the JSON object"}}}
	}
	return nil
}

// strictFlags: unknown fields are errors and keys match exactly (encoding/json
// would let "Input_Tokens" or "inputtokens" through case-insensitively).
const strictFlags = json.DisallowUnknownFields | json.DontMatchCaseInsensitiveStructFields

func jsonItemError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		tpe *time.ParseError
	)
	switch {
	case errors.As(err, &syn):
		return &ItemError{Reason: ReasonInvalidJSON, Problems: []event.FieldError{{Reason: fmt.Sprintf("%s (byte %d)", syn.Error(), syn.Offset)}}}
	case errors.As(err, &typ):
		return &ItemError{Reason: ReasonInvalidField, Problems: []event.FieldError{{
			Field: wireField(typ.Field), Reason: fmt.Sprintf("must be %s, got JSON %s", jsonTypeName(typ.Type.String()), typ.Value)}}}
	case errors.As(err, &tpe):
		return &ItemError{Reason: ReasonInvalidField, Problems: []event.FieldError{{
			Field: "event_time", Reason: "must be RFC 3339 (e.g. 2026-11-28T10:15:30.123Z): " + tpe.Error()}}}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &ItemError{Reason: ReasonUnknownField, Problems: []event.FieldError{{Field: strings.Trim(f, `"`), Reason: "is not a field of this event (v1 schema)"}}}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &ItemError{Reason: ReasonInvalidJSON, Problems: []event.FieldError{{Reason: "truncated JSON"}}}
	}
	if strings.Contains(msg, "parsing time") || strings.Contains(msg, "Time.UnmarshalJSON") {
		return &ItemError{Reason: ReasonInvalidField, Problems: []event.FieldError{{Field: "event_time", Reason: "must be RFC 3339 (e.g. 2026-11-28T10:15:30.123Z): " + msg}}}
	}
	return &ItemError{Reason: ReasonInvalidField, Problems: []event.FieldError{{Reason: msg}}}
}

// wireField drops the embedded struct's name encoding/json puts in front of
// promoted fields, so paths read as the JSON does.
func wireField(f string) string {
	for _, p := range []string{"UsageEvent.", "OutcomeEvent."} {
		f = strings.TrimPrefix(f, p)
	}
	return f
}

func jsonTypeName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "map"), strings.HasPrefix(goType, "struct"), strings.Contains(goType, "."):
		return "an object"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case goType == "bool":
		return "a boolean"
	}
	return goType
}
