// Package chargeback allocates spend to cost centres by declared rules
// (direct attribution, shared workflows split by a driver, unattributed spend
// spread or kept visible), shares prompt-cache premiums and savings among the
// teams that read a cached prefix, and writes a monthly statement per cost
// centre that adds up exactly to the total. Allocations carry FOCUS 1.3's
// AllocatedMethodId and AllocatedMethodDetails. Method: docs/procurement.md.
package chargeback

import (
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/confload"
	"os"
)

// Unattributed handling.
const (
	UnattributedKeep   = "keep_visible" // a statement line of its own (default)
	UnattributedSpread = "spread"       // spread in proportion to each centre's allocated spend
)

// UnattributedCentre names the statement line of spend no rule attributes.
const UnattributedCentre = "(unattributed)"

// Config is the chargeback rules file.
type Config struct {
	// Currency of the spend and statement (the tenant's reporting currency).
	Currency string `yaml:"currency"`
	// Shared workflows split among the cost centres that use them.
	Shared []SharedRule `yaml:"shared,omitempty"`
	// Unattributed: keep_visible (default) or spread.
	Unattributed string `yaml:"unattributed,omitempty"`
	// CacheSharing shares each cached prefix's write premium and read
	// savings among its readers by cache-read tokens (default true).
	CacheSharing *bool `yaml:"cache_sharing,omitempty"`
}

// SharedRule splits a workflow's spend by a driver: calls or outcomes made
// by each cost centre in the month.
type SharedRule struct {
	ID       string `yaml:"id"`
	Workflow string `yaml:"workflow"`
	Driver   string `yaml:"driver"` // calls | outcomes
}

// Read reads and validates a rules file.
func Read(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := confload.Strict(b, &c); err != nil {
		return nil, fmt.Errorf("chargeback: %w", err)
	}
	c.SetDefaults()
	return &c, c.Validate()
}

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	if c.Unattributed == "" {
		c.Unattributed = UnattributedKeep
	}
	if c.CacheSharing == nil {
		t := true
		c.CacheSharing = &t
	}
}

// Validate reports every problem with its path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, a ...any) { errs = append(errs, fmt.Errorf(path+": "+format, a...)) }
	if c.Currency == "" {
		bad("currency", "required")
	}
	if c.Unattributed != UnattributedKeep && c.Unattributed != UnattributedSpread {
		bad("unattributed", "%q is not keep_visible or spread", c.Unattributed)
	}
	ids, flows := map[string]bool{}, map[string]bool{}
	for i, s := range c.Shared {
		p := fmt.Sprintf("shared[%d]", i)
		if s.ID == "" || ids[s.ID] || s.ID == MethodDirect || s.ID == MethodSpread || s.ID == MethodUnattributed {
			bad(p+".id", "required, unique, not a built-in method name")
		}
		ids[s.ID] = true
		if s.Workflow == "" || flows[s.Workflow] {
			bad(p+".workflow", "required, one rule per workflow")
		}
		flows[s.Workflow] = true
		if s.Driver != "calls" && s.Driver != "outcomes" {
			bad(p+".driver", "%q is not calls or outcomes", s.Driver)
		}
	}
	return errors.Join(errs...)
}
