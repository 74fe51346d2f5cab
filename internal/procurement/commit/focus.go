package commit

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/export"
)

// ContractCommitmentColumns are the columns of FOCUS 1.3's Contract
// Commitment dataset (specification/datasets/contract_commitment/columns),
// in the specification's order. Nothing else is written.
var ContractCommitmentColumns = []string{
	"BillingCurrency", "ContractCommitmentCost", "ContractCommitmentId", "ContractCommitmentCategory",
	"ContractCommitmentDescription", "ContractCommitmentPeriodEnd", "ContractCommitmentPeriodStart",
	"ContractCommitmentQuantity", "ContractCommitmentType", "ContractCommitmentUnit", "ContractId",
	"ContractPeriodEnd", "ContractPeriodStart",
}

// FOCUSRow is one commitment period as a Contract Commitment row. Both
// kinds are spend commitments (ContractCommitmentCategory "Spend", so the
// cost is set and the quantity and unit are null); a commitment has one row
// per period, a credit one row for its life. ContractCommitmentId is the
// commitment's id and the period's start date, unique per row.
type FOCUSRow struct {
	BillingCurrency               string
	ContractCommitmentCost        decimal.Decimal
	ContractCommitmentID          string
	ContractCommitmentCategory    string
	ContractCommitmentDescription string
	ContractCommitmentPeriodEnd   time.Time
	ContractCommitmentPeriodStart time.Time
	ContractCommitmentType        string
	ContractID                    string
	ContractPeriodEnd             time.Time
	ContractPeriodStart           time.Time
}

// FOCUS lists the Contract Commitment rows of every commitment.
func (f *File) FOCUS() []FOCUSRow {
	var out []FOCUSRow
	for i := range f.Commitments {
		c := &f.Commitments[i]
		typ := "Committed spend"
		if c.Kind == KindCredit {
			typ = "Prepaid credit"
		}
		desc := c.Description
		if desc == "" {
			desc = typ + " with " + c.Provider
		}
		for s := c.start; s.Before(c.expiry); {
			_, e := c.periodOf(s)
			out = append(out, FOCUSRow{BillingCurrency: c.Currency, ContractCommitmentCost: c.Amount.D,
				ContractCommitmentID: c.ID + "/" + s.Format(time.DateOnly), ContractCommitmentCategory: "Spend",
				ContractCommitmentDescription: desc, ContractCommitmentPeriodStart: s, ContractCommitmentPeriodEnd: e,
				ContractCommitmentType: typ, ContractID: c.ContractID, ContractPeriodStart: c.start, ContractPeriodEnd: c.expiry})
			s = e
		}
	}
	return out
}

// FOCUSTable is the dataset for internal/export (CSV, Parquet, Arrow).
// Quantity and unit are null for spend commitments; export has no Nullable
// columns, so they are written as empty strings.
func (f *File) FOCUSTable() *export.Table {
	t := &export.Table{}
	types := map[string]string{"ContractCommitmentCost": "Decimal(38, 12)", "ContractCommitmentPeriodEnd": "DateTime",
		"ContractCommitmentPeriodStart": "DateTime", "ContractPeriodEnd": "DateTime", "ContractPeriodStart": "DateTime"}
	for _, c := range ContractCommitmentColumns {
		typ := types[c]
		if typ == "" {
			typ = "String"
		}
		t.Columns = append(t.Columns, export.TableColumn{Name: c, Type: typ})
	}
	for _, r := range f.FOCUS() {
		t.Rows = append(t.Rows, []any{r.BillingCurrency, r.ContractCommitmentCost, r.ContractCommitmentID, r.ContractCommitmentCategory,
			r.ContractCommitmentDescription, r.ContractCommitmentPeriodEnd, r.ContractCommitmentPeriodStart, "", r.ContractCommitmentType, "",
			r.ContractID, r.ContractPeriodEnd, r.ContractPeriodStart})
	}
	return t
}
