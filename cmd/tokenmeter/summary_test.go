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
