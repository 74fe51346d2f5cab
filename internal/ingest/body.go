package ingest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// Format is how a request body holds its items.
type Format int

// Body formats, chosen by Content-Type.
const (
	// FormatJSON is one object, an array of objects, or several objects one
	// after the other (which covers NDJSON sent as application/json).
	FormatJSON Format = iota + 1
	// FormatNDJSON is one object per line; a broken line rejects that item only.
	FormatNDJSON
	// FormatCloudEvent is one CloudEvent in structured mode, the event in `data`.
	FormatCloudEvent
	// FormatCloudEventBatch is a JSON array of structured CloudEvents.
	FormatCloudEventBatch
)

// ErrUnsupportedMediaType is returned by FormatFor for a content type no decoder reads.
var ErrUnsupportedMediaType = errors.New("unsupported content type")

// ErrTooManyItems is returned when a body holds more items than allowed.
var ErrTooManyItems = errors.New("too many items")

// FormatFor maps a Content-Type header to a Format. An empty header is read
// as JSON (curl -d without -H sends form encoding, which is rejected).
func FormatFor(contentType string) (Format, error) {
	if strings.TrimSpace(contentType) == "" {
		return FormatJSON, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrUnsupportedMediaType, contentType)
	}
	switch mt {
	case "application/json", "text/json":
		return FormatJSON, nil
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines":
		return FormatNDJSON, nil
	case "application/cloudevents+json":
		return FormatCloudEvent, nil
	case "application/cloudevents-batch+json":
		return FormatCloudEventBatch, nil
	}
	return 0, fmt.Errorf("%w: %q (use application/json, application/x-ndjson, application/cloudevents+json or application/cloudevents-batch+json)", ErrUnsupportedMediaType, mt)
}

// BodyError is a body that cannot be read at all (HTTP 400).
type BodyError struct{ Msg string }

func (e *BodyError) Error() string { return e.Msg }

// Item is one element of a body: the raw event JSON plus envelope defaults,
// or the reason it could not be isolated.
type Item struct {
	Raw      []byte
	defaults itemDefaults
	Err      *ItemError
}

// SplitBody cuts a body into items. It fails with *BodyError when the body
// cannot be read at all and with ErrTooManyItems past maxItems (0: no limit).
// Item indexes in answers are positions in the returned slice.
func SplitBody(f Format, body []byte, maxItems int) ([]Item, error) {
	return SplitBodyWithin(f, body, maxItems, limits.Default())
}

// SplitBodyWithin is SplitBody with configured limits: nesting deeper than
// lim.MaxDepth fails with a *limits.Error before any parser runs (an NDJSON
// line that nests too deep rejects that line only).
func SplitBodyWithin(f Format, body []byte, maxItems int, lim limits.Limits) ([]Item, error) {
	lim.ApplyDefaults()
	if f != FormatNDJSON {
		if err := CheckDepth(body, lim.MaxDepth); err != nil {
			return nil, err
		}
	}
	var items []Item
	add := func(it Item) error {
		if maxItems > 0 && len(items) >= maxItems {
			return fmt.Errorf("%w: more than %d", ErrTooManyItems, maxItems)
		}
		items = append(items, it)
		return nil
	}
	switch f {
	case FormatNDJSON:
		for len(body) > 0 {
			line := body
			if i := bytes.IndexByte(body, '\n'); i >= 0 {
				line, body = body[:i], body[i+1:]
			} else {
				body = nil
			}
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			it := Item{Raw: line}
			if err := CheckDepth(line, lim.MaxDepth); err != nil {
				it.Err = &ItemError{Reason: ReasonLimit, Problems: []event.FieldError{{Reason: err.Error(), Limit: limits.BreachDepth}}}
			} else if !json.Valid(line) {
				it.Err = &ItemError{Reason: ReasonInvalidJSON, Problems: []event.FieldError{{Reason: "line is not valid JSON"}}}
			}
			if err := add(it); err != nil {
				return nil, err
			}
		}
	case FormatJSON:
		err := forEachTopLevel(body, func(v json.RawMessage, _ bool) error {
			return add(Item{Raw: v})
		})
		if err != nil {
			return nil, err
		}
	case FormatCloudEvent:
		err := forEachTopLevel(body, func(v json.RawMessage, inArray bool) error {
			if len(items) > 0 || inArray {
				return &BodyError{Msg: "application/cloudevents+json holds one CloudEvent; use application/cloudevents-batch+json for several"}
			}
			return add(cloudEventItem(v, lim))
		})
		if err != nil {
			return nil, err
		}
	case FormatCloudEventBatch:
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 || trimmed[0] != '[' {
			return nil, &BodyError{Msg: "application/cloudevents-batch+json must be a JSON array of CloudEvents"}
		}
		arr, err := parseArray(trimmed)
		if err != nil {
			return nil, err
		}
		if maxItems > 0 && len(arr) > maxItems {
			return nil, fmt.Errorf("%w: more than %d", ErrTooManyItems, maxItems)
		}
		items = make([]Item, 0, len(arr))
		for _, v := range arr {
			items = append(items, cloudEventItem(v, lim))
		}
	default:
		return nil, fmt.Errorf("%w: format %d", ErrUnsupportedMediaType, f)
	}
	if len(items) == 0 {
		return nil, &BodyError{Msg: "body holds no events"}
	}
	return items, nil
}

// forEachTopLevel calls fn for each top-level JSON value in body: an object,
// or the elements of an array (parsed once, not copied).
func forEachTopLevel(body []byte, fn func(v json.RawMessage, inArray bool) error) error {
	rest := bytes.TrimSpace(body)
	for len(rest) > 0 {
		var (
			r   []byte
			err error
		)
		switch rest[0] {
		case '[':
			var arr []json.RawMessage
			r, err = json.Parse(rest, &arr, json.DontCopyRawMessage)
			if err == nil {
				for _, v := range arr {
					if err = fn(v, true); err != nil {
						return err
					}
				}
			}
		case '{':
			var v json.RawMessage
			r, err = json.Parse(rest, &v, json.DontCopyRawMessage)
			if err == nil {
				if err = fn(v, false); err != nil {
					return err
				}
			}
		default:
			return &BodyError{Msg: "body must hold JSON objects or an array of objects"}
		}
		if err != nil {
			var be *BodyError
			if errors.As(err, &be) || errors.Is(err, ErrTooManyItems) {
				return err
			}
			return &BodyError{Msg: "body is not valid JSON: " + err.Error()}
		}
		rest = bytes.TrimSpace(r)
	}
	return nil
}

// parseArray splits a JSON array into its elements without copying them.
func parseArray(b []byte) ([]json.RawMessage, error) {
	var arr []json.RawMessage
	rest, err := json.Parse(b, &arr, json.DontCopyRawMessage)
	if err == nil && len(bytes.TrimSpace(rest)) != 0 {
		err = errors.New("data after the array")
	}
	if err != nil {
		return nil, &BodyError{Msg: "body is not valid JSON: " + err.Error()}
	}
	return arr, nil
}

// cloudEvent is a CloudEvents 1.0 structured-mode envelope.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            *time.Time      `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	DataBase64      *string         `json:"data_base64"`
}

func cloudEventItem(v json.RawMessage, lim limits.Limits) Item {
	fail := func(field, reason string) Item {
		return Item{Raw: v, Err: &ItemError{Reason: ReasonInvalidField, Problems: []event.FieldError{{Field: field, Reason: reason}}}}
	}
	if err := checkItemJSON(v, lim); err != nil {
		return Item{Raw: v, Err: err}
	}
	var ce cloudEvent
	if _, err := json.Parse(v, &ce, json.DontMatchCaseInsensitiveStructFields); err != nil {
		if ie, ok := jsonItemError(err).(*ItemError); ok {
			return Item{Raw: v, Err: ie}
		}
		return fail("", err.Error())
	}
	if ce.SpecVersion != "1.0" {
		return fail("specversion", fmt.Sprintf("must be \"1.0\"; got %q", ce.SpecVersion))
	}
	if ce.DataContentType != "" {
		if mt, _, err := mime.ParseMediaType(ce.DataContentType); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return fail("datacontenttype", fmt.Sprintf("must be application/json; got %q", ce.DataContentType))
		}
	}
	data := ce.Data
	if ce.DataBase64 != nil {
		b, err := base64.StdEncoding.DecodeString(*ce.DataBase64)
		if err != nil {
			return fail("data_base64", "is not base64: "+err.Error())
		}
		data = b
	}
	if !present(data) {
		return fail("data", "is required and holds the event")
	}
	it := Item{Raw: data, defaults: itemDefaults{ID: ce.ID}}
	if ce.Time != nil {
		it.defaults.Time = *ce.Time
	}
	return it
}

// DecodeUsageItem decodes one item of a body with the request's options.
func DecodeUsageItem(it Item, o Options, out *event.UsageEvent) error {
	if it.Err != nil {
		return it.Err
	}
	return decodeUsageItem(it.Raw, o, it.defaults, out)
}

// DecodeOutcomeItem decodes one item of a body with the request's options.
func DecodeOutcomeItem(it Item, o Options, out *event.OutcomeEvent) error {
	if it.Err != nil {
		return it.Err
	}
	return decodeOutcomeItem(it.Raw, o, it.defaults, out)
}
