package chargeback

import (
	"io"
	"math/big"
	"sort"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/exact"
	"github.com/tokenmeter/tokenmeter/internal/export"
)

// Line is one cost centre's month on the statement. Amounts are exact;
// Rounded is Total at cents, rounded with the month's other lines so that
// the printed lines add up to the printed total.
type Line struct {
	Month, CostCentre, Currency string
	Direct, Shared, Spread      decimal.Decimal
	Unattributed                decimal.Decimal
	CacheAdjustment             decimal.Decimal
	Total                       decimal.Decimal
	Rounded                     decimal.Decimal
}

// Statement is the month's lines and their total.
type Statement struct {
	Lines        []Line
	Total        map[string]decimal.Decimal // by month, exact
	TotalRounded map[string]decimal.Decimal // by month, cents
}

// Build sums allocations per month and cost centre.
func Build(c *Config, allocs []Allocation) *Statement {
	type k struct{ month, centre string }
	m := map[k]*Line{}
	for _, a := range allocs {
		key := k{a.Month, a.CostCentre}
		l := m[key]
		if l == nil {
			l = &Line{Month: a.Month, CostCentre: a.CostCentre, Currency: c.Currency}
			m[key] = l
		}
		switch a.AllocatedMethodID {
		case MethodDirect:
			l.Direct = l.Direct.Add(a.Amount)
		case MethodSpread:
			l.Spread = l.Spread.Add(a.Amount)
		case MethodUnattributed:
			l.Unattributed = l.Unattributed.Add(a.Amount)
		case MethodCacheSharing:
			l.CacheAdjustment = l.CacheAdjustment.Add(a.Amount)
		default:
			l.Shared = l.Shared.Add(a.Amount)
		}
		l.Total = l.Total.Add(a.Amount)
	}
	st := &Statement{Total: map[string]decimal.Decimal{}, TotalRounded: map[string]decimal.Decimal{}}
	for _, l := range m {
		st.Lines = append(st.Lines, *l)
	}
	sort.Slice(st.Lines, func(i, j int) bool {
		if st.Lines[i].Month != st.Lines[j].Month {
			return st.Lines[i].Month < st.Lines[j].Month
		}
		return st.Lines[i].CostCentre < st.Lines[j].CostCentre
	})
	for start := 0; start < len(st.Lines); {
		end := start
		var parts []*big.Rat
		month := st.Lines[start].Month
		for end < len(st.Lines) && st.Lines[end].Month == month {
			parts = append(parts, exact.Rat(st.Lines[end].Total))
			st.Total[month] = st.Total[month].Add(st.Lines[end].Total)
			end++
		}
		for i, r := range exact.RoundSum(parts, 2) {
			st.Lines[start+i].Rounded = r
			st.TotalRounded[month] = st.TotalRounded[month].Add(r)
		}
		start = end
	}
	return st
}

const money = "Decimal(38, 15)"

// Table is the statement as an export table (one row per month and centre).
func (s *Statement) Table() *export.Table {
	t := &export.Table{Columns: []export.TableColumn{
		{Name: "month", Type: "String"}, {Name: "cost_centre", Type: "String"}, {Name: "currency", Type: "String"},
		{Name: "direct", Type: money}, {Name: "shared", Type: money}, {Name: "spread", Type: money},
		{Name: "unattributed", Type: money}, {Name: "cache_adjustment", Type: money},
		{Name: "total", Type: money}, {Name: "total_rounded", Type: "Decimal(38, 2)"},
	}}
	for _, l := range s.Lines {
		t.Rows = append(t.Rows, []any{l.Month, l.CostCentre, l.Currency, l.Direct, l.Shared, l.Spread, l.Unattributed,
			l.CacheAdjustment, l.Total, l.Rounded})
	}
	return t
}

// Write writes the statement as csv, parquet or arrow (internal/export).
func (s *Statement) Write(format string, w io.Writer) error {
	_, err := export.WriteTable(s.Table(), format, w)
	return err
}

// AllocationsTable is every allocated charge with its FOCUS allocation columns.
func AllocationsTable(allocs []Allocation) *export.Table {
	t := &export.Table{Columns: []export.TableColumn{
		{Name: "month", Type: "String"}, {Name: "cost_centre", Type: "String"}, {Name: "origin", Type: "String"},
		{Name: "amount", Type: money}, {Name: "AllocatedMethodId", Type: "String"}, {Name: "AllocatedMethodDetails", Type: "String"},
	}}
	for _, a := range allocs {
		t.Rows = append(t.Rows, []any{a.Month, a.CostCentre, a.Origin, a.Amount, a.AllocatedMethodID, a.AllocatedMethodDetails})
	}
	return t
}
