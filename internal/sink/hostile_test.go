package sink

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// Issue 17 item 1 on the sink: outcomes.v1 takes records straight from apps,
// and a record of 8M `[` overflowed the JSON decoder's goroutine stack (a
// fatal error: the whole process died). It is refused (and becomes a dlq
// row) before the decoder runs, on every topic the sink reads.
func TestDeepRecordIsRefusedBeforeDecoding(t *testing.T) {
	reg, _ := tenant.NewRegistry([]tenant.Config{{ID: "acme", ReportingCurrency: "HKD", TimeZone: "Asia/Hong_Kong"}})
	z := &zoner{tenants: reg}
	deep := append([]byte(`{"outcome_id":"o","tenant":"acme","attributes":`), bytes.Repeat([]byte("["), 8_000_000)...)
	for _, tb := range []*table{pricedTable, outcomesTable, dlqTable, alertsTable} {
		if _, _, err := decodeBounded(tb, z, deep); err == nil || !strings.Contains(err.Error(), "limits.max_depth") {
			t.Errorf("%s: %v", tb.name, err)
		}
	}
}
