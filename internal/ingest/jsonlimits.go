package ingest

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// JSON input limits, checked by a linear scan before any parser sees the
// bytes. The JSON parsers recurse per nesting level (segmentio's without
// bound: 8M `[` overflow the goroutine stack, which no recover catches and
// which kills the process), take the last of repeated keys and replace
// invalid UTF-8 with U+FFFD, so two distinct ids could become one. The scan
// refuses all three up front; it does not judge syntax (the parser does).

// ReasonLimit is the rejection reason of an item that breaches a limit; the
// breach itself (limits.Breach*) is in its problem.
const ReasonLimit = "limit_exceeded"

// CheckDepth refuses JSON nested deeper than maxDepth (objects and arrays).
// It is the cheap whole-body check run before a body is split into items;
// the error is a *limits.Error naming the byte offset.
func CheckDepth(b []byte, maxDepth int) error {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			end, ok := skipString(b, i)
			if !ok {
				return nil // unterminated: the parser reports the syntax error
			}
			i = end
		case '{', '[':
			depth++
			if depth > maxDepth {
				return &limits.Error{Field: "body", Breach: limits.BreachDepth, Limit: int64(maxDepth),
					Detail: fmt.Sprintf("nesting deeper than %d levels at byte %d", maxDepth, i)}
			}
		case '}', ']':
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}

// skipString returns the index of the closing quote of the string opening
// at b[i]; ok=false when it is not closed.
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i, true
		}
	}
	return 0, false
}

// frame is one open object or array of the full scan.
type frame struct {
	object bool
	// key: the next string in this object is a key.
	key   bool
	index int
	// name is the current key (objects), for field paths.
	name string
	// keys seen in this object: raw (unescaped) bytes; a map once large.
	keys [][]byte
	set  map[string]struct{}
}

// checkItemJSON is the full scan of one item (an event, a CloudEvent
// envelope): depth, valid UTF-8 in every string (escapes included: a lone
// surrogate \ud800 is refused too) and no key twice in one object. The error
// is an *ItemError with ReasonLimit whose problem names the field path.
func checkItemJSON(b []byte, lim limits.Limits) *ItemError {
	var stack []frame
	fail := func(breach string, limit int64, detail string) *ItemError {
		e := &limits.Error{Field: scanPath(stack), Breach: breach, Limit: limit, Detail: detail}
		return &ItemError{Reason: ReasonLimit, Problems: []event.FieldError{{Field: e.Field, Reason: (&limits.Error{Breach: breach, Limit: limit, Detail: detail}).Error(), Limit: breach}}}
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case '"':
			end, closed := skipString(b, i)
			if !closed {
				return nil // unterminated: the parser reports the syntax error
			}
			raw := b[i+1 : end]
			s, ok := unescapedJSON(raw)
			if !ok {
				return fail(limits.BreachUTF8, 0, "")
			}
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].key {
				f := &stack[n-1]
				f.key = false
				if f.seen(s) {
					f.name = string(s)
					return fail(limits.BreachDuplicate, 0, "")
				}
				f.name = string(s)
			}
			i = end
		case '{', '[':
			if len(stack) >= lim.MaxDepth {
				return fail(limits.BreachDepth, int64(lim.MaxDepth), fmt.Sprintf("nesting deeper than %d levels", lim.MaxDepth))
			}
			stack = append(stack, frame{object: c == '{', key: c == '{'})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			if n := len(stack); n > 0 {
				if stack[n-1].object {
					stack[n-1].key = true
				} else {
					stack[n-1].index++
				}
			}
		}
	}
	return nil
}

// seen records key k and reports whether the object already had it.
func (f *frame) seen(k []byte) bool {
	if f.set != nil {
		if _, ok := f.set[string(k)]; ok {
			return true
		}
		f.set[string(k)] = struct{}{}
		return false
	}
	for _, o := range f.keys {
		if bytes.Equal(o, k) {
			return true
		}
	}
	f.keys = append(f.keys, k)
	if len(f.keys) > 16 {
		f.set = make(map[string]struct{}, 2*len(f.keys))
		for _, o := range f.keys {
			f.set[string(o)] = struct{}{}
		}
		f.keys = nil
	}
	return false
}

// scanPath renders the open frames as a field path (attributes.x, items[2]).
func scanPath(stack []frame) string {
	var b []byte
	for i, f := range stack {
		if f.object {
			if f.name == "" {
				continue
			}
			if len(b) > 0 {
				b = append(b, '.')
			}
			b = append(b, f.name...)
			continue
		}
		if i > 0 || len(b) > 0 {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(f.index), 10)
			b = append(b, ']')
		}
	}
	if len(b) > 128 {
		b = append(b[:128], "…"...)
	}
	return string(b)
}

// unescapedJSON returns the string's bytes with escapes resolved, or
// ok=false when it holds invalid UTF-8 or an escaped lone surrogate. Without
// escapes it returns raw itself (no copy).
func unescapedJSON(raw []byte) ([]byte, bool) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw, utf8.Valid(raw)
	}
	if !utf8.Valid(raw) {
		return nil, false
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 >= len(raw) {
			out = append(out, c)
			continue
		}
		i++
		switch raw[i] {
		case 'u':
			r, n := hex4(raw[i+1:])
			if n == 0 {
				return out, true // malformed: the parser reports it
			}
			i += 4
			if r >= 0xD800 && r < 0xDC00 {
				// A high surrogate needs a low one right after.
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if lo, m := hex4(raw[i+3:]); m != 0 && lo >= 0xDC00 && lo < 0xE000 {
						out = utf8.AppendRune(out, 0x10000+(r-0xD800)<<10+(lo-0xDC00))
						i += 6
						continue
					}
				}
				return nil, false
			}
			if r >= 0xDC00 && r < 0xE000 {
				return nil, false
			}
			out = utf8.AppendRune(out, r)
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		default:
			out = append(out, raw[i])
		}
	}
	return out, true
}

func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, 0
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, 0
		}
	}
	return r, 4
}
