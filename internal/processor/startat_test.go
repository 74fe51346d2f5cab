package processor

import (
	"context"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/role"
)

// TestRenamedGroupDoesNotCountOldEventsTwice: a group that priced 50 events
// is replaced, ten days later, by a group under a new name (no committed
// offsets) while the dedupe log remembers only 7 days. Started at the log
// start it would price the 50 again (ClickHouse would count them twice);
// the default start_at (dedupe_window) starts inside the window, so the
// old events are priced once in all and the new ones once.
func TestRenamedGroupDoesNotCountOldEventsTwice(t *testing.T) {
	for _, tc := range []struct {
		startAt  string
		oldTimes int // how often each old event is priced in all
	}{
		{StartAtDedupeWindow, 1},
		{StartAtEarliest, 2}, // what the default prevents, shown
	} {
		t.Run(tc.startAt, func(t *testing.T) {
			_, k := newCluster(t)
			cfg := testConfig("")
			cfg.StartAt = StartAtEarliest
			for i := range 50 {
				produce(t, k, usageRecord(t, k, usageEvent(i)))
			}
			p1 := startProcessor(t, cfg, k, role.Deps{})
			waitProcessed(t, k, cfg.Group)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := p1.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}

			// Ten days later: 30 new events, stamped an hour before the new
			// group starts, and a renamed group.
			later := time.Now().Add(10 * 24 * time.Hour)
			for i := 100; i < 130; i++ {
				r := usageRecord(t, k, usageEvent(i))
				r.Timestamp = later.Add(-time.Hour)
				produce(t, k, r)
			}
			cfg2 := cfg
			cfg2.Group = cfg.Group + "-renamed"
			cfg2.StartAt = tc.startAt
			p2, err := New(cfg2, testPrices, role.Deps{Kafka: k, Tenants: testTenants})
			if err != nil {
				t.Fatal(err)
			}
			p2.now = func() time.Time { return later }
			if err := p2.Start(context.Background(), make(chan error, 1)); err != nil {
				t.Fatal(err)
			}
			defer p2.Shutdown(context.Background())
			waitProcessed(t, k, cfg2.Group)

			priced := decodePriced(t, readCommitted(t, k, k.Topics.Priced))
			for i := range 50 {
				if got := len(priced[usageEvent(i).EventID]); got != tc.oldTimes {
					t.Errorf("old %s priced %d times, want %d", usageEvent(i).EventID, got, tc.oldTimes)
				}
			}
			for i := 100; i < 130; i++ {
				if got := len(priced[usageEvent(i).EventID]); got != 1 {
					t.Errorf("new %s priced %d times, want once", usageEvent(i).EventID, got)
				}
			}
		})
	}
}
