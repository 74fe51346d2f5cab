package contract

import (
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// usage_completeness and fx_stale travel on priced.v1 (ClickHouse and the
// summary read them from there).
func TestCompletenessAndStaleFXRoundTrip(t *testing.T) {
	for _, c := range []struct {
		completeness string
		stale        bool
	}{{"", false}, {event.UsageCacheUnreported, true}, {event.UsageMissing, false}} {
		in := event.PricedUsageEvent{UsageEvent: event.UsageEvent{EventID: "e", Tenant: "acme", Provider: "openai", Model: "gpt-4o",
			EventTime: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), UsageCompleteness: c.completeness},
			FXStale: c.stale, FXDate: "2026-11-01", LocalDate: "2026-12-01", PricedAt: time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC)}
		var enc Encoder
		b, err := enc.AppendPriced(nil, &in)
		if err != nil {
			t.Fatal(err)
		}
		var out event.PricedUsageEvent
		if err := DecodePriced(b, &out); err != nil {
			t.Fatal(err)
		}
		if out.UsageCompleteness != c.completeness || out.FXStale != c.stale {
			t.Errorf("got %q/%v, want %q/%v", out.UsageCompleteness, out.FXStale, c.completeness, c.stale)
		}
	}
}
