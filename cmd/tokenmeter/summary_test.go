package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// TestSummaryShowsCompletenessStaleFXAndRejections: the summary says how far
// its figures can be trusted (hand-made rows on a migrated database).
func TestSummaryShowsCompletenessStaleFXAndRejections(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	cfg := chx.Config{Addr: testenv.ClickHouseAddr(t), Database: db}
	cfg.ApplyDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := chx.Migrate(ctx, conn, cfg); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO " + db + ".priced_usage (event_id, event_time, local_date, tenant, provider, model, effective_cost, usage_completeness, fx_stale) VALUES" +
			" ('a', '2026-12-01 00:00:00', '2026-12-01', 'acme', 'openai', 'gpt-4o', 0.00475, '', 0)," +
			" ('b', '2026-12-01 00:00:00', '2026-12-01', 'acme', 'openai', 'gpt-4o', 0.006, 'cache_unreported', 1)," +
			" ('c', '2026-12-01 00:00:00', '2026-12-01', 'acme', 'openai', 'gpt-4o', 0.004, 'cache_unreported', 1)," +
			" ('d', '2026-12-01 00:00:00', '2026-12-01', 'acme', 'anthropic', 'claude-sonnet-4-5', 0.009, 'cache_omitted', 0)," +
			" ('e', '2026-12-01 00:00:00', '2026-12-01', 'acme', 'openai', 'gpt-4o', 0, 'usage_missing', 0)",
		"INSERT INTO " + db + ".dlq (id, stage, reason, rejected_at) VALUES ('otlp:x', 'collector', 'invalid_usage', now()), ('otlp:y', 'collector', 'invalid_usage', now())",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := writeSummary(ctx, &out, conn, db); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"usage completeness: 1 exact, 2 upper bound (0.01 USD at most), 1 lower bound, 1 unmetered (no usage: cost unknown, not 0)",
		"WARNING: 2 event(s) priced with a stale FX rate",
		"dead-lettered by stage/reason: collector/invalid_usage 2",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}
