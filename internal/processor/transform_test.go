package processor

import (
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/attribution"
	"github.com/tokenmeter/tokenmeter/internal/contract"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// The priced record carries the local date and zone the sink stores,
// computed from the processor's tenant config (issue 9: two sinks with
// different configs used to store different days), and decodes to the same.
func TestPricedRecordCarriesLocalDateZoneAndCurrency(t *testing.T) {
	attr, err := attribution.Load(attribution.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &transformer{tenants: testTenants, prices: testPrices, attr: attr, limits: limits.Default()}
	seen := newSeenSet()
	for _, c := range []struct {
		at, date string
	}{
		// 17:30 UTC is 01:30 the next day in Hong Kong (UTC+8).
		{"2026-11-01T17:30:00Z", "2026-11-02"},
		{"2026-11-01T15:59:59.999Z", "2026-11-01"},
		// 31 October 16:00 UTC is 1 November in Hong Kong (a month boundary).
		{"2026-10-31T16:00:00Z", "2026-11-01"},
	} {
		ev := usageEvent(1)
		ev.EventTime, _ = time.Parse(time.RFC3339Nano, c.at)
		if v := tr.transform(nil, encode(t, ev), time.Now(), seen); v.kind != verdictPriced {
			t.Fatalf("%s: %+v", c.at, v)
		}
		val, err := tr.encodePriced()
		if err != nil {
			t.Fatal(err)
		}
		var got event.PricedUsageEvent
		if err := contract.DecodePriced(val, &got); err != nil {
			t.Fatal(err)
		}
		if got.LocalDate != c.date || got.TimeZone != "Asia/Hong_Kong" || got.BillingCurrency != "HKD" {
			t.Errorf("%s: local_date %s zone %s currency %s, want %s Asia/Hong_Kong HKD", c.at, got.LocalDate, got.TimeZone, got.BillingCurrency, c.date)
		}
	}
}
