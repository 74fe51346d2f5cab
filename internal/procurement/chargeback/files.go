package chargeback

import (
	"io"

	"github.com/tokenmeter/tokenmeter/internal/procurement"
)

// CSV headers of the chargeback inputs (the v_chargeback_* views have the
// same columns).
var (
	SpendColumns  = []string{"month", "cost_centre", "workflow", "provider", "model", "cost"}
	DriverColumns = []string{"month", "workflow", "cost_centre", "calls", "outcomes"}
	CacheColumns  = []string{"month", "prefix", "cost_centre", "read_tokens", "write_premium", "read_savings"}
)

// ReadSpendCSV reads monthly spend.
func ReadSpendCSV(r io.Reader, name string) ([]Spend, error) {
	var out []Spend
	err := procurement.ReadCSV(r, name, SpendColumns, func(rec procurement.Record) {
		out = append(out, Spend{Month: rec.Str("month"), CostCentre: rec.Str("cost_centre"), Workflow: rec.Str("workflow"),
			Provider: rec.Str("provider"), Model: rec.Str("model"), Cost: rec.Dec("cost")})
	})
	return out, err
}

// ReadDriversCSV reads shared-workflow drivers.
func ReadDriversCSV(r io.Reader, name string) ([]Driver, error) {
	var out []Driver
	err := procurement.ReadCSV(r, name, DriverColumns, func(rec procurement.Record) {
		out = append(out, Driver{Month: rec.Str("month"), Workflow: rec.Str("workflow"), CostCentre: rec.Str("cost_centre"),
			Calls: rec.Int("calls"), Outcomes: rec.Int("outcomes")})
	})
	return out, err
}

// ReadCacheCSV reads cache use per prefix and cost centre.
func ReadCacheCSV(r io.Reader, name string) ([]CacheUse, error) {
	var out []CacheUse
	err := procurement.ReadCSV(r, name, CacheColumns, func(rec procurement.Record) {
		out = append(out, CacheUse{Month: rec.Str("month"), Prefix: rec.Str("prefix"), CostCentre: rec.Str("cost_centre"),
			ReadTokens: rec.Int("read_tokens"), WritePremium: rec.Dec("write_premium"), ReadSavings: rec.Dec("read_savings")})
	})
	return out, err
}
