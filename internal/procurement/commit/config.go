// Package commit tracks commitments (committed spend per period, shortfall
// billed) and prepaid credits (a balance that expires) per provider, drawn
// down by priced usage; it reports burn rate, projected shortfall and
// expiring unused credit as budget-style alerts, advises the budget decision
// API which model would use an otherwise-unused commitment, and exports the
// terms as FOCUS 1.3's Contract Commitment dataset. Format: docs/procurement.md.
package commit

import (
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/confload"
	"os"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// Kinds of commitment.
const (
	KindCommitment = "commitment" // spend Amount per Period; a shortfall is billed
	KindCredit     = "credit"     // a prepaid balance of Amount, usable until Expiry
)

// File is the commitments file.
type File struct {
	Commitments []Commitment `yaml:"commitments"`
	Alerts      Alerts       `yaml:"alerts,omitempty"`
}

// Alerts are the thresholds of the commitment alerts.
type Alerts struct {
	// ShortfallPercent: alert when a period's projected spend falls short of
	// the amount by more than this share (default "10").
	ShortfallPercent pricing.Amount `yaml:"shortfall_percent,omitempty"`
	// ExpiryDays: alert about credit projected to be unused at expiry when
	// the expiry is this close (default 30).
	ExpiryDays int `yaml:"expiry_days,omitempty"`
}

// Commitment is one commitment or prepaid credit.
type Commitment struct {
	ID       string         `yaml:"id"`
	Kind     string         `yaml:"kind"` // commitment | credit
	Provider string         `yaml:"provider"`
	Amount   pricing.Amount `yaml:"amount"`
	// Currency of Amount; it must be the pricing currency of the costs drawn
	// (the catalogue's, default USD).
	Currency string `yaml:"currency,omitempty"`
	// Period of a commitment: month (default), quarter or year, counted
	// from Start. Credits have none.
	Period string `yaml:"period,omitempty"`
	Start  string `yaml:"start"`  // YYYY-MM-DD (00:00 UTC) or RFC 3339
	Expiry string `yaml:"expiry"` // exclusive end; unused credit expires here
	// AppliesTo limits what draws on it (empty lists: everything of the provider).
	AppliesTo AppliesTo `yaml:"applies_to,omitempty"`
	// ContractID is FOCUS ContractId (default ID).
	ContractID  string `yaml:"contract_id,omitempty"`
	Description string `yaml:"description,omitempty"`

	start, expiry time.Time
}

// AppliesTo filters usage by tenant, catalogue model and tier.
type AppliesTo struct {
	Tenants []string `yaml:"tenants,omitempty"`
	Models  []string `yaml:"models,omitempty"` // canonical catalogue names
	Tiers   []string `yaml:"tiers,omitempty"`  // standard, batch, … (long-context variants included)
}

// Read reads and validates a commitments file.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse parses and validates (unknown fields are errors).
func Parse(b []byte) (*File, error) {
	var f File
	if err := confload.Strict(b, &f); err != nil {
		return nil, fmt.Errorf("commitments: %w", err)
	}
	f.SetDefaults()
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// SetDefaults fills the documented defaults.
func (f *File) SetDefaults() {
	if !f.Alerts.ShortfallPercent.Set {
		f.Alerts.ShortfallPercent, _ = pricing.A("10")
	}
	if f.Alerts.ExpiryDays == 0 {
		f.Alerts.ExpiryDays = 30
	}
	for i := range f.Commitments {
		c := &f.Commitments[i]
		if c.Currency == "" {
			c.Currency = "USD"
		}
		if c.Kind == KindCommitment && c.Period == "" {
			c.Period = "month"
		}
		if c.ContractID == "" {
			c.ContractID = c.ID
		}
	}
}

func parseInstant(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not YYYY-MM-DD or RFC 3339", s)
	}
	return t.UTC(), nil
}

// Validate reports every problem with its path.
func (f *File) Validate() error {
	var errs []error
	bad := func(path, format string, a ...any) { errs = append(errs, fmt.Errorf(path+": "+format, a...)) }
	if f.Alerts.ShortfallPercent.D.IsNegative() {
		bad("alerts.shortfall_percent", "must be >= 0")
	}
	if f.Alerts.ExpiryDays < 0 {
		bad("alerts.expiry_days", "must be >= 0")
	}
	ids := map[string]bool{}
	for i := range f.Commitments {
		c := &f.Commitments[i]
		p := fmt.Sprintf("commitments[%d]", i)
		if c.ID == "" || ids[c.ID] {
			bad(p+".id", "required and unique")
		}
		ids[c.ID] = true
		if c.Kind != KindCommitment && c.Kind != KindCredit {
			bad(p+".kind", "%q is not commitment or credit", c.Kind)
		}
		if c.Provider == "" {
			bad(p+".provider", "required")
		}
		if !c.Amount.Set || !c.Amount.D.IsPositive() {
			bad(p+".amount", "required, > 0")
		}
		if c.Kind == KindCommitment && months(c.Period) == 0 {
			bad(p+".period", "%q is not month, quarter or year", c.Period)
		}
		if c.Kind == KindCredit && c.Period != "" {
			bad(p+".period", "a credit has no period")
		}
		var err1, err2 error
		c.start, err1 = parseInstant(c.Start)
		c.expiry, err2 = parseInstant(c.Expiry)
		if err1 != nil {
			bad(p+".start", "%v", err1)
		}
		if err2 != nil {
			bad(p+".expiry", "%v", err2)
		}
		if err1 == nil && err2 == nil && !c.expiry.After(c.start) {
			bad(p+".expiry", "must be after start")
		}
	}
	return errors.Join(errs...)
}

func months(p string) int {
	switch p {
	case "month":
		return 1
	case "quarter":
		return 3
	case "year":
		return 12
	}
	return 0
}
