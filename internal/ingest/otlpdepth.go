package ingest

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// CheckOTLPProtoDepth refuses an OTLP/protobuf ExportTraceServiceRequest
// whose messages nest deeper than maxDepth, before the OTLP decoder recurses
// into them: AnyValue nests without bound (kvlist_value, array_value), about
// three bytes per level, so an 8 MiB body could hold millions of levels.
// It walks the wire format along the trace schema only (messages that can
// lead to an AnyValue); malformed bytes are left to the decoder to report.
func CheckOTLPProtoDepth(b []byte, maxDepth int) error {
	if d := protoDepth(b, otlpRequest, 0, maxDepth); d > maxDepth {
		return &limits.Error{Field: "body", Breach: limits.BreachDepth, Limit: int64(maxDepth),
			Detail: fmt.Sprintf("OTLP messages nest deeper than %d levels", maxDepth)}
	}
	return nil
}

// otlpMsg names a message of the trace schema; children maps a field number
// to the message it holds.
type otlpMsg int

const (
	otlpNone otlpMsg = iota
	otlpRequest
	otlpResourceSpans
	otlpResource
	otlpScopeSpans
	otlpScope
	otlpSpan
	otlpSpanEvent
	otlpSpanLink
	otlpKeyValue
	otlpAnyValue
	otlpArrayValue
	otlpKeyValueList
)

// otlpChildren: opentelemetry-proto trace/v1, common/v1, resource/v1 field numbers.
var otlpChildren = map[otlpMsg]map[protowire.Number]otlpMsg{
	otlpRequest:       {1: otlpResourceSpans},
	otlpResourceSpans: {1: otlpResource, 2: otlpScopeSpans},
	otlpResource:      {1: otlpKeyValue},
	otlpScopeSpans:    {1: otlpScope, 2: otlpSpan},
	otlpScope:         {3: otlpKeyValue},
	otlpSpan:          {9: otlpKeyValue, 11: otlpSpanEvent, 13: otlpSpanLink},
	otlpSpanEvent:     {3: otlpKeyValue},
	otlpSpanLink:      {5: otlpKeyValue},
	otlpKeyValue:      {2: otlpAnyValue},
	otlpAnyValue:      {5: otlpArrayValue, 6: otlpKeyValueList},
	otlpArrayValue:    {1: otlpAnyValue},
	otlpKeyValueList:  {1: otlpKeyValue},
}

// protoDepth returns the deepest nesting below (and including) a message of
// kind m at depth d, stopping as soon as it exceeds maxDepth.
func protoDepth(b []byte, m otlpMsg, d, maxDepth int) int {
	if d > maxDepth {
		return d
	}
	deepest := d
	children := otlpChildren[m]
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return deepest
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return deepest
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return deepest
		}
		b = b[n:]
		if child, ok := children[num]; ok {
			if got := protoDepth(v, child, d+1, maxDepth); got > deepest {
				deepest = got
				if deepest > maxDepth {
					return deepest
				}
			}
		}
	}
	return deepest
}
