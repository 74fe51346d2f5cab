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

// The summary's queries (and the CFO lines) run on the current schema.
func TestSummaryOnTheSchema(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := chx.Config{Addr: testenv.ClickHouseAddr(t), Database: db}
	cfg.ApplyDefaults()
	if _, err := chx.Migrate(ctx, conn, cfg); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO " + db + ".priced_usage (event_id, event_time, local_date, tenant, workflow, model, billing_currency, billed_effective_cost, effective_cost, fx_rate, pricing_currency) " +
			"VALUES ('e1', '2026-11-02 03:00:00.250', '2026-11-02', 'acme', 'support', 'm-a', 'HKD', 16, 2, 8, 'USD')",
		"INSERT INTO " + db + ".outcomes (outcome_id, event_time, local_date, tenant, workflow, outcome_type, count, value_amount, value_currency, billing_currency) " +
			"VALUES ('o1', '2026-11-02 04:00:00', '2026-11-02', 'acme', 'support', 'ticket_resolved', 2, 5, 'USD', 'HKD')",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var out bytes.Buffer
	if err := writeSummary(ctx, &out, conn, db); err != nil {
		t.Fatalf("summary: %v\n%s", err, out.String())
	}
	// 5 USD at the month's rate 8 = 40 HKD; 16 HKD for 2 outcomes = 8 per outcome.
	for _, want := range []string{"priced events stored: 1", "ticket_resolved", "40.00", "support 8.00 HKD over 2 outcomes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "unavailable") {
		t.Errorf("a CFO line is unavailable:\n%s", out.String())
	}
}

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
