package chx_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/chx"
)

// Verify passes on consistent data and flags a Kafka record stored twice.
func TestVerify(t *testing.T) {
	conn, cfg := migrated(t)
	ctx := context.Background()
	at := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	insertUsage(t, conn, cfg.Database, []usage{{id: "a", wf: "w", at: at, local: "2026-04-01", cost: "1"}, {id: "b", wf: "w", at: at, local: "2026-04-01", cost: "2"}})
	checks, err := chx.Verify(ctx, conn, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if !c.OK {
			t.Errorf("consistent data: %s failed: %s", c.Name, c.Detail)
		}
	}
	// The same two records (same topic/partition/offsets 0 and 1) stored
	// again, as re-decoded rows that differ in one value: a byte-identical
	// block would be dropped by the tables' deduplication window.
	insertUsage(t, conn, cfg.Database, []usage{{id: "a", wf: "w", at: at, local: "2026-04-01", cost: "1.5"}, {id: "b", wf: "w", at: at, local: "2026-04-01", cost: "2"}})
	checks, err = chx.Verify(ctx, conn, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	if checks[0].OK || checks[0].Name != "no duplicate Kafka records in priced_usage" {
		t.Errorf("duplicate not flagged: %+v", checks[0])
	}
	// A sink block left pending for an hour (no sink took the partition).
	if err := conn.Exec(ctx, "INSERT INTO "+cfg.Database+".sink_ledger (kafka_topic, kafka_partition, first_offset, last_offset, state, block_id, written_at, version) SELECT 'priced', 3, 10, 19, 'pending', 'b', now64(3) - INTERVAL 1 HOUR, 40"); err != nil {
		t.Fatal(err)
	}
	checks, err = chx.Verify(ctx, conn, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	last := checks[len(checks)-1]
	if last.OK || last.Name != "no sink block pending for more than 5 minutes" || !strings.Contains(last.Detail, "priced[3]: offsets 10..19") {
		t.Errorf("pending block not flagged: %+v", last)
	}
}
