package chargeback

import (
	"bytes"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/shopspring/decimal"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func cfg(unattributed string) *Config {
	c := &Config{Currency: "USD", Unattributed: unattributed, Shared: []SharedRule{{ID: "support-split", Workflow: "support", Driver: "calls"}}}
	c.SetDefaults()
	return c
}

var spend = []Spend{
	{Month: "2026-11", CostCentre: "A", Workflow: "w1", Provider: "openai", Model: "gpt-4o", Cost: d("10.00")},
	{Month: "2026-11", CostCentre: "B", Workflow: "w2", Provider: "openai", Model: "gpt-4o", Cost: d("5.00")},
	{Month: "2026-11", Workflow: "support", Provider: "anthropic", Model: "claude-sonnet-4-5", Cost: d("1.00")},
	{Month: "2026-11", Workflow: "batch-x", Provider: "openai", Model: "gpt-4o-mini", Cost: d("0.10")},
}

var drivers = []Driver{
	{Month: "2026-11", Workflow: "support", CostCentre: "A", Calls: 1},
	{Month: "2026-11", Workflow: "support", CostCentre: "B", Calls: 1},
	{Month: "2026-11", Workflow: "support", CostCentre: "C", Calls: 1},
}

func TestAllocationAddsUpToTheCent(t *testing.T) {
	allocs, err := Allocate(cfg(UnattributedSpread), spend, drivers, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Shared 1.00 by calls 1:1:1 → 0.34, 0.33, 0.33 (the extra cent to the
	// first of equal remainders). Unattributed 0.10 spread by A 10.34, B 5.33,
	// C 0.33 of 16.00: 0.064625, 0.0333125, 0.0020625 → 0.07, 0.03, 0.00.
	want := map[string]string{"A": "10.41", "B": "5.36", "C": "0.33"}
	st := Build(cfg(UnattributedSpread), allocs)
	if len(st.Lines) != 3 {
		t.Fatalf("lines %+v", st.Lines)
	}
	for _, l := range st.Lines {
		if !l.Total.Equal(d(want[l.CostCentre])) {
			t.Errorf("%s total %s, want %s", l.CostCentre, l.Total, want[l.CostCentre])
		}
	}
	if !st.Total["2026-11"].Equal(d("16.10")) || !st.TotalRounded["2026-11"].Equal(d("16.10")) {
		t.Errorf("total %s rounded %s, want 16.10 = the spend", st.Total["2026-11"], st.TotalRounded["2026-11"])
	}
	var shared []string
	for _, a := range allocs {
		if a.AllocatedMethodID == "support-split" {
			shared = append(shared, a.AllocatedMethodDetails)
		}
	}
	if len(shared) != 3 || shared[0] != `{"Elements":[{"AllocatedRatio":0.333334,"UsageUnit":"calls","UsageQuantity":1}]}` ||
		!strings.Contains(shared[1], `"AllocatedRatio":0.333333`) {
		t.Errorf("AllocatedMethodDetails %v", shared)
	}

	// Kept visible, the 0.10 is a line of its own.
	allocs, err = Allocate(cfg(UnattributedKeep), spend, drivers, nil)
	if err != nil {
		t.Fatal(err)
	}
	st = Build(cfg(UnattributedKeep), allocs)
	got := map[string]string{}
	for _, l := range st.Lines {
		got[l.CostCentre] = l.Total.String()
	}
	if got[UnattributedCentre] != "0.1" || got["A"] != "10.34" || got["B"] != "5.33" || got["C"] != "0.33" {
		t.Errorf("keep visible: %v", got)
	}
}

func TestRoundedLinesAddUpToRoundedTotal(t *testing.T) {
	// Three thirds of 0.10 at 15 decimals: each line rounds to 0.03, but the
	// printed lines must add to the printed 0.10.
	s := []Spend{{Month: "2026-11", Workflow: "support", Provider: "p", Model: "m", Cost: d("0.100000000000000")}}
	allocs, err := Allocate(cfg(UnattributedKeep), s, drivers, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := Build(cfg(UnattributedKeep), allocs)
	var sum decimal.Decimal
	for _, l := range st.Lines {
		sum = sum.Add(l.Rounded)
	}
	if !sum.Equal(d("0.10")) || !st.Total["2026-11"].Equal(d("0.1")) {
		t.Errorf("rounded lines sum %s, exact total %s", sum, st.Total["2026-11"])
	}
}

func TestSharedCacheMethod(t *testing.T) {
	// A wrote the prefix (premium 1.25) and read 100 tokens (saved 0.27); B
	// read 300 (saved 0.81). Net benefit 1.08 − 1.25 = −0.17, A's share 1/4:
	// A should see −0.0425 and saw −0.98, so A's cost falls by 0.9375; B's
	// rises by 0.81 − (−0.1275) = 0.9375, i.e. B pays 3/4 of the premium.
	uses := []CacheUse{
		{Month: "2026-11", Prefix: "sys-prompt-v3", CostCentre: "A", ReadTokens: 100, WritePremium: d("1.25"), ReadSavings: d("0.27")},
		{Month: "2026-11", Prefix: "sys-prompt-v3", CostCentre: "B", ReadTokens: 300, ReadSavings: d("0.81")},
	}
	allocs, err := Allocate(cfg(UnattributedKeep), spend[:2], nil, uses)
	if err != nil {
		t.Fatal(err)
	}
	st := Build(cfg(UnattributedKeep), allocs)
	want := map[string][2]string{"A": {"-0.9375", "9.0625"}, "B": {"0.9375", "5.9375"}}
	for _, l := range st.Lines {
		w := want[l.CostCentre]
		if !l.CacheAdjustment.Equal(d(w[0])) || !l.Total.Equal(d(w[1])) {
			t.Errorf("%s: adjustment %s total %s, want %s %s", l.CostCentre, l.CacheAdjustment, l.Total, w[0], w[1])
		}
	}
	if !st.Total["2026-11"].Equal(d("15")) {
		t.Errorf("cache sharing changed the total: %s", st.Total["2026-11"])
	}
}

func TestStatementParquetIsExact(t *testing.T) {
	allocs, _ := Allocate(cfg(UnattributedSpread), spend, drivers, nil)
	st := Build(cfg(UnattributedSpread), allocs)
	var buf bytes.Buffer
	if err := st.Write("parquet", &buf); err != nil {
		t.Fatal(err)
	}
	rdr, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != 3 || tbl.Schema().Field(8).Type.String() != "decimal(38, 15)" {
		t.Errorf("rows %d, total column %s", tbl.NumRows(), tbl.Schema().Field(8).Type)
	}
	var csv bytes.Buffer
	if err := st.Write("csv", &csv); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(csv.String(), "2026-11,A,USD,10.000000000000000,0.340000000000000,0.070000000000000,0.000000000000000,0.000000000000000,10.410000000000000,10.41") {
		t.Errorf("csv:\n%s", csv.String())
	}
}

func TestValidatePaths(t *testing.T) {
	c := &Config{Unattributed: "hide", Shared: []SharedRule{{ID: "direct", Driver: "tokens"}}}
	err := c.Validate()
	for _, w := range []string{"currency", "unattributed", "shared[0].id", "shared[0].workflow", "shared[0].driver"} {
		if err == nil || !strings.Contains(err.Error(), w+":") {
			t.Errorf("missing %s in %v", w, err)
		}
	}
}
