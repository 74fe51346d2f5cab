// Package limits holds the input bounds of the contract (DESIGN.md invariant
// 8): how deep, how long, how large and how many. They are configuration
// with documented defaults (the `limits:` section of a pipeline config),
// checked at the edge by every decoder that reads outside input, and each
// breach has a name (a Breach* constant) that labels the rejection metrics.
//
// Every role of a pipeline must run with the same limits: an event the
// collector accepts is decoded again by the processor, which applies them
// too (a stricter processor would send accepted events to the DLQ).
package limits

import (
	"errors"
	"fmt"
)

// Breach names: the reason label of every rejection counted for a limit,
// and the stable prefix of its message. A closed set (bounded metric labels).
const (
	BreachDepth      = "max_depth"
	BreachString     = "max_string_bytes"
	BreachAttributes = "max_attributes"
	BreachTokens     = "max_tokens"
	BreachRecord     = "max_record_bytes"
	BreachUTF8       = "invalid_utf8"
	BreachDuplicate  = "duplicate_key"
)

// Defaults, stated once.
const (
	DefaultMaxDepth       = 32
	DefaultMaxStringBytes = 1024
	DefaultMaxAttributes  = 64
	// DefaultMaxTokens is 1e9 tokens per token field of one event: about 100
	// times the largest context window offered today (10M), so no real call
	// exceeds it, and the sum of every token field of an event (at most 6e9)
	// stays far from int64 overflow.
	DefaultMaxTokens int64 = 1_000_000_000
	// DefaultMaxRecordBytes is one Kafka record (key + value, as produced):
	// a quarter of the brokers' default max.message.bytes (1048588), so the
	// priced record the processor writes (the usage event plus prices,
	// quantities and attribution) always fits too.
	DefaultMaxRecordBytes = 256 << 10
	// BrokerDefaultMaxMessageBytes is Apache Kafka's (and the embedded
	// broker's) default max.message.bytes.
	BrokerDefaultMaxMessageBytes = 1048588
)

// Limits is the `limits:` section. Zero fields take their defaults.
type Limits struct {
	// MaxDepth is how deeply JSON may nest in one request body or record
	// (objects and arrays; a canonical event nests 2 levels, an OTLP JSON
	// export about 10). Deeper input is refused before it is parsed.
	// Default 32.
	MaxDepth int `yaml:"max_depth"`
	// MaxStringBytes caps every string field of an event (ids, names,
	// attribution, attribute keys and values) in bytes of UTF-8. event_id
	// is capped at 256 regardless. Default 1024.
	MaxStringBytes int `yaml:"max_string_bytes"`
	// MaxAttributes caps the entries of an event's free `attributes`.
	// Default 64.
	MaxAttributes int `yaml:"max_attributes"`
	// MaxTokens caps each token count and non-token unit of one event.
	// Default 1e9 (see DefaultMaxTokens). Sums of counts are checked
	// without overflow whatever this is.
	MaxTokens int64 `yaml:"max_tokens"`
	// MaxRecordBytes caps one record as the collector produces it (key +
	// value). Must stay below the brokers' max.message.bytes with room for
	// the priced record (about 1.5 KB more plus the usage event once more).
	// Default 256 KiB.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// MemoryLimit is the Go runtime's soft memory limit in bytes
	// (GOMEMLIMIT); the GC works harder as the heap nears it. 0: the
	// GOMEMLIMIT environment variable, else no limit. The env variable, when
	// set, wins. Default 0.
	MemoryLimit int64 `yaml:"memory_limit"`
}

// Default returns the limits with every default applied.
func Default() Limits {
	var l Limits
	l.ApplyDefaults()
	return l
}

// ApplyDefaults fills unset fields.
func (l *Limits) ApplyDefaults() {
	if l.MaxDepth == 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxStringBytes == 0 {
		l.MaxStringBytes = DefaultMaxStringBytes
	}
	if l.MaxAttributes == 0 {
		l.MaxAttributes = DefaultMaxAttributes
	}
	if l.MaxTokens == 0 {
		l.MaxTokens = DefaultMaxTokens
	}
	if l.MaxRecordBytes == 0 {
		l.MaxRecordBytes = DefaultMaxRecordBytes
	}
}

// OrDefault returns l with unset fields defaulted (a zero Limits in an
// options struct means "the defaults").
func (l Limits) OrDefault() Limits {
	l.ApplyDefaults()
	return l
}

// Validate reports every problem at once, each with its field.
func (l *Limits) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if l.MaxDepth < 2 || l.MaxDepth > 1000 {
		bad("max_depth: must be between 2 and 1000; got %d", l.MaxDepth)
	}
	if l.MaxStringBytes < 64 {
		bad("max_string_bytes: must be at least 64; got %d", l.MaxStringBytes)
	}
	if l.MaxAttributes < 0 {
		bad("max_attributes: must not be negative; got %d", l.MaxAttributes)
	}
	// 1e15 keeps every sum of an event's counts (at most 11 of them) and
	// every budget's token total far from int64 overflow.
	if l.MaxTokens < 1 || l.MaxTokens > 1e15 {
		bad("max_tokens: must be between 1 and 1e15; got %d", l.MaxTokens)
	}
	if l.MaxRecordBytes < 4096 || l.MaxRecordBytes > BrokerDefaultMaxMessageBytes/2 {
		bad("max_record_bytes: must be between 4096 and %d (half the brokers' default max.message.bytes, leaving room for the priced record); got %d",
			BrokerDefaultMaxMessageBytes/2, l.MaxRecordBytes)
	}
	if l.MemoryLimit < 0 {
		bad("memory_limit: must not be negative; got %d", l.MemoryLimit)
	} else if l.MemoryLimit > 0 && l.MemoryLimit < 64<<20 {
		bad("memory_limit: %d bytes is below 64 MiB, too little to run the pipeline", l.MemoryLimit)
	}
	return errors.Join(errs...)
}

// Error is one breached limit: which field (a JSON path or a name such as
// "body"), which limit, and the limit's value. HTTP handlers answer 400 (or
// 413 for sizes) with its text; its Breach labels the metric.
type Error struct {
	Field  string
	Breach string
	Limit  int64
	Detail string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("exceeds limits.%s (%d)", e.Breach, e.Limit)
	switch e.Breach {
	case BreachUTF8:
		s = "is not valid UTF-8"
	case BreachDuplicate:
		s = "is a duplicate key (each key may appear once per object)"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Field != "" {
		return e.Field + ": " + s
	}
	return s
}

// AddTokens returns a+b, or ok=false when the sum would overflow int64 (or
// either is negative). Used wherever counts from outside are summed.
func AddTokens(a, b int64) (sum int64, ok bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	s := a + b
	if s < a {
		return 0, false
	}
	return s, true
}
