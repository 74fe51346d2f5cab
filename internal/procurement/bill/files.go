package bill

import (
	"io"

	"github.com/tokenmeter/tokenmeter/internal/procurement"
)

// MeteredColumns is the metered-usage CSV header (what `tokenmeter bill
// reconcile -metered` reads; the v_bill_metered_hourly view has the same
// columns).
var MeteredColumns = []string{"hour", "provider", "project", "model", "class", "tokens", "cost", "pricing_currency",
	"billed_cost", "billing_currency", "fx_rate"}

// ReadMeteredCSV reads metered usage rows.
func ReadMeteredCSV(r io.Reader, name string) ([]Metered, error) {
	var out []Metered
	err := procurement.ReadCSV(r, name, MeteredColumns, func(rec procurement.Record) {
		out = append(out, Metered{Hour: rec.Time("hour"), Provider: rec.Str("provider"), Project: rec.Str("project"),
			Model: rec.Str("model"), Class: rec.Str("class"), Tokens: rec.Int("tokens"), Cost: rec.Dec("cost"),
			PricingCurrency: rec.Str("pricing_currency"), BilledCost: rec.Dec("billed_cost"),
			BillingCurrency: rec.Str("billing_currency"), FXRate: rec.Dec("fx_rate")})
	})
	return out, err
}

// EvidenceColumns is the evidence CSV header: kind is dlq or incomplete,
// amount the estimated (missing) cost in the pricing currency.
var EvidenceColumns = []string{"kind", "hour", "provider", "project", "model", "events", "amount"}

// ReadEvidenceCSV reads DLQ and usage-incomplete evidence.
func ReadEvidenceCSV(r io.Reader, name string) (Evidence, error) {
	var ev Evidence
	err := procurement.ReadCSV(r, name, EvidenceColumns, func(rec procurement.Record) {
		k := Known{Hour: rec.Time("hour"), Provider: rec.Str("provider"), Project: rec.Str("project"), Model: rec.Str("model"),
			Events: rec.Int("events"), Amount: rec.Dec("amount")}
		switch rec.Str("kind") {
		case "dlq":
			ev.DLQ = append(ev.DLQ, k)
		case "incomplete":
			ev.Incomplete = append(ev.Incomplete, k)
		}
	})
	return ev, err
}
