// Package pricing prices usage: effective-dated catalogues, contracts and FX.
//
// File map:
//
//	config.go     the `pricing:` config section
//	amount.go     exact decimal amounts as they appear in YAML
//	catalogue.go  catalogue file format, parsing and the model index
//	contracts.go  negotiated terms (contracted unit prices, discounts)
//	fx.go         dated FX rates (YAML or CSV)
//	rates.go      per-class rate sets in decimal and exact fixed-point form
//	engine.go     Load, Price, Estimate
//	check.go      catalogue lint (`tokenmeter prices check`)
//	litellm.go    import of LiteLLM's model_prices_and_context_window.json
package pricing

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Config is the `pricing:` section: where the catalogue, contracts and FX rates live.
type Config struct {
	// Catalogues are price catalogue YAML files, merged in order. Entries for the
	// same provider/model in different files must not overlap in time (Load
	// fails if they do). Required for any event to be priced: with no catalogue
	// every event is rejected as unknown_model (never priced at zero).
	Catalogues []string `yaml:"catalogues"`
	// Contracts is a YAML file of negotiated terms. Optional; without it
	// contracted cost = list cost.
	Contracts string `yaml:"contracts"`
	// FX is a YAML (.yaml/.yml) or CSV (.csv) file of dated currency rates.
	// Optional when every tenant reports in the catalogue currency (USD);
	// otherwise events of other tenants are rejected as fx_missing.
	FX string `yaml:"fx"`
	// FXMaxAge is how old the rate used for an event may be (event date
	// minus rate date) before the priced event is flagged fx_stale and a
	// warning is logged: the rate file has not been updated. Default 96h (a
	// long weekend); rounded down to whole days.
	FXMaxAge time.Duration `yaml:"fx_max_age"`
}

// DefaultFXMaxAge is FXMaxAge's default.
const DefaultFXMaxAge = 96 * time.Hour

func (c *Config) fxMaxAgeDays() int64 {
	if c.FXMaxAge == 0 {
		return int64(DefaultFXMaxAge / (24 * time.Hour))
	}
	return int64(c.FXMaxAge / (24 * time.Hour))
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	for i, p := range c.Catalogues {
		if strings.TrimSpace(p) == "" {
			errs = append(errs, fmt.Errorf("catalogues[%d]: empty path", i))
		}
	}
	if c.FXMaxAge < 0 || (c.FXMaxAge > 0 && c.FXMaxAge < 24*time.Hour) {
		errs = append(errs, fmt.Errorf("fx_max_age: must be at least 24h (rates are daily); got %s", c.FXMaxAge))
	}
	if c.FX != "" {
		switch strings.ToLower(filepath.Ext(c.FX)) {
		case ".yaml", ".yml", ".csv":
		default:
			errs = append(errs, fmt.Errorf("fx: %q must end in .yaml, .yml or .csv", c.FX))
		}
	}
	return errors.Join(errs...)
}
