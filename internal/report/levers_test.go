package report

import (
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/levers"
)

func TestLeversPageShowsTheBestSavingPerLever(t *testing.T) {
	d := &Data{Currency: "HKD"}
	if pg := leversPage(d); !strings.Contains(pg.Lead, "not run") || len(pg.Blocks) != 0 {
		t.Fatalf("without the analysis: %+v", pg)
	}
	ss := []levers.Saving{
		{Lever: levers.LeverRouting, Workflow: "legal", Amount: decimal.RequireFromString("1234.5"), Currency: "HKD", What: "route"},
		{Lever: levers.LeverCaching, Workflow: "marketing", Amount: decimal.RequireFromString("80"), Currency: "HKD", What: "cache"},
		{Lever: levers.LeverRouting, Workflow: "agent", Amount: decimal.RequireFromString("50"), Currency: "HKD", What: "route2"},
		{Lever: levers.LeverPrompt, Workflow: "marketing", Amount: decimal.RequireFromString("12.345"), Currency: "HKD", What: "v3"},
	}
	d.Levers = &ss
	pg := leversPage(d)
	if pg.Lead != "The largest saving found: HKD 1,234.50 in legal (route)." {
		t.Fatalf("lead %q", pg.Lead)
	}
	best := pg.Blocks[0].Table.Rows
	if len(best) != 3 || best[0][0].Text != "routing" || best[1][0].Text != "caching" || best[2][0].Text != "prompt" || best[2][2].Text != "HKD 12.35" {
		t.Fatalf("best per lever: %+v", best)
	}
	if n := len(pg.Blocks[1].Table.Rows); n != 4 {
		t.Fatalf("top savings rows %d", n)
	}
	empty := []levers.Saving{}
	d.Levers = &empty
	if pg := leversPage(d); !strings.Contains(pg.Lead, "No routing") {
		t.Fatalf("empty: %q", pg.Lead)
	}
}
