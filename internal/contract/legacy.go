package contract

import (
	"errors"
	"fmt"

	"github.com/segmentio/encoding/json"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// IsLegacyJSON reports a priced.v1 value written before the binary
// contract: a JSON object. A PricedUsage message never starts with '{'
// (0x7b would open a group, field 15, which proto3 never writes).
func IsLegacyJSON(b []byte) bool { return len(b) > 0 && b[0] == '{' }

// decodeLegacy reads a JSON priced record (the event model's JSON, as
// processors before the binary contract wrote it). Its amounts carry up to
// 15 places and are rounded half to even to money.Scale here; it has no
// local_date or time_zone (the reader supplies them, see sink).
func decodeLegacy(b []byte, out *event.PricedUsageEvent) error {
	*out = event.PricedUsageEvent{}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("priced usage event (JSON): %w", err)
	}
	if out.EventID == "" || out.Tenant == "" {
		return errors.New("priced usage event: event_id and tenant are required")
	}
	return nil
}
