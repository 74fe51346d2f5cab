// Package reconcile sets the bottom-up forecast (internal/forecast) against
// the top-down envelope the CFO approved: per month and for the year, the
// gap, and when the plan is over, ranked options per lever with their saving
// re-priced by the same model and engine. It also splits a closed month's
// variance (actual − forecast) into volume, mix, efficiency, price and FX,
// adding up exactly.
//
// File map:
//
//	config.go     options of a reconciliation, Validate
//	envelope.go   phasing the annual envelope by month and team
//	reconcile.go  Run: months, teams, options
//	bridge.go     the variance bridge
package reconcile

import (
	"errors"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/forecast"
)

// Config says how to reconcile.
type Config struct {
	// From is the first month options may change (1..12, default 1): months
	// before it are closed (their actuals, when given, replace the model).
	From forecast.Month
	// Actuals are spend per closed month in the plan's reporting currency
	// (months >= From are ignored). A month absent here keeps the model's
	// figure; the report marks which months are actual.
	Actuals map[forecast.Month]decimal.Decimal
	// MaxOptions caps the ranked list (default 10).
	MaxOptions int
}

func (c *Config) applyDefaults() {
	if c.From == 0 {
		c.From = 1
	}
	if c.MaxOptions == 0 {
		c.MaxOptions = 10
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.From < 1 || c.From > 12 {
		errs = append(errs, fmt.Errorf("from: month %d must be 1..12", c.From))
	}
	if c.MaxOptions < 1 {
		errs = append(errs, fmt.Errorf("max_options: %d must be >= 1", c.MaxOptions))
	}
	return errors.Join(errs...)
}
