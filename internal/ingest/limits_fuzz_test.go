package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// The limit scans read every byte from outside before any parser does, so
// they must never panic, and they must agree with each other on depth.
func FuzzCheckItemJSON(f *testing.F) {
	for _, s := range append(fastSeeds, usageSeeds...) {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"a":{"a":1},"a":2}`))
	f.Add([]byte(`{"k":"\ud83d\ude00","l":"\ud800x"}`))
	f.Add([]byte(strings.Repeat("[", 40)))
	f.Add([]byte(`{"a\"b":1,"a\"b":2}`))
	lim := limits.Default()
	f.Fuzz(func(t *testing.T, b []byte) {
		itemErr := checkItemJSON(b, lim)
		depthErr := CheckDepth(b, lim.MaxDepth)
		if depthErr != nil && json.Valid(b) && (itemErr == nil || itemErr.Problems[0].Limit != limits.BreachDepth) {
			// The full scan may stop earlier at another breach, never pass a too-deep value.
			if itemErr == nil {
				t.Fatalf("CheckDepth refuses %q, the item scan accepts it", b)
			}
		}
		if itemErr == nil && json.Valid(b) {
			// What the scan lets through is within the depth bound and
			// decodes without a stack problem.
			if depthErr != nil {
				t.Fatalf("item scan accepted %q beyond max_depth", b)
			}
			var v any
			_ = json.Unmarshal(b, &v)
		}
		// Invalid UTF-8 never passes the item scan inside a string.
		if itemErr == nil && json.Valid(b) && !bytes.Equal(bytes.ToValidUTF8(b, nil), b) {
			t.Fatalf("invalid UTF-8 accepted: %q", b)
		}
	})
}

func FuzzCheckOTLPProtoDepth(f *testing.F) {
	b, _ := otlpSeed(f).MarshalProto()
	f.Add(b)
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = CheckOTLPProtoDepth(b, limits.DefaultMaxDepth)
	})
}
