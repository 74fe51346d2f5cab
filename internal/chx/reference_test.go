package chx_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// Two effective-dated entries of one model: 2025 prices and the 2026 cut.
const historyCatalogue = `
version: hist-test
currency: USD
models:
  - provider: openai
    model: gpt-x
    valid_from: 2025-01-01
    valid_to: 2026-01-01
    source: https://example.test/old
    read_on: 2025-01-01
    prices:
      standard: {input: "4", output: "16"}
      batch:    {input: "2", output: "8"}
  - provider: openai
    model: gpt-x
    valid_from: 2026-01-01
    source: https://example.test/new
    read_on: 2026-01-01
    prices:
      standard: {input: "3", output: "12"}
`

// price_catalogue holds every entry, not only the one in force when migrate
// runs: a backfilled 2025 event's price_id joins to the 2025 rates.
func TestPriceCatalogueHoldsTheWholeHistory(t *testing.T) {
	conn, cfg := migrated(t)
	ctx := context.Background()
	db := cfg.Database
	f, err := pricing.ParseCatalogue([]byte(historyCatalogue), "hist.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := pricing.New([]*pricing.CatalogueFile{f}, []string{"hist.yaml"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows := chx.CataloguePrices(eng)
	// 2025: standard + batch; 2026: standard.
	if len(rows) != 3 {
		t.Fatalf("%d catalogue rows, want 3: %+v", len(rows), rows)
	}
	if err := chx.SyncPriceCatalogue(ctx, conn, db, rows, time.Now()); err != nil {
		t.Fatal(err)
	}
	past, err := eng.Lookup("openai", "gpt-x", time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	insertUsage(t, conn, db, []usage{{id: "backfilled", wf: "support", model: "gpt-x", at: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), local: "2025-06-01", cost: "1",
		priceID: past.PriceIDByTier["standard"]}})
	got := rowsOf(t, conn, "SELECT "+s("c.price_id", "c.input_per_mtok", "c.output_per_mtok", "c.valid_from", "c.valid_to", "c.source")+
		" FROM "+db+".priced_usage AS u INNER JOIN (SELECT * FROM "+db+".price_catalogue FINAL) AS c ON c.price_id = u.price_id WHERE u.event_id = 'backfilled'")
	expectRows(t, "backfilled event joined to its price", got,
		[]string{"openai/gpt-x/standard@2025-01-01", "4", "16", "2025-01-01 00:00:00.000", "2026-01-01 00:00:00.000", "https://example.test/old"})
	got = rowsOf(t, conn, "SELECT "+s("price_id", "valid_to")+" FROM "+db+".price_catalogue FINAL ORDER BY price_id")
	expectRows(t, "price_catalogue", got,
		[]string{"openai/gpt-x/batch@2025-01-01", "2026-01-01 00:00:00.000"},
		[]string{"openai/gpt-x/standard@2025-01-01", "2026-01-01 00:00:00.000"},
		[]string{"openai/gpt-x/standard@2026-01-01", "NULL"},
	)
}
