// Package bill imports providers' own cost reports (OpenAI's organization
// costs API, Anthropic's Admin API cost report, cloud FOCUS exports from AWS,
// Azure and Google Cloud) and reconciles them day by day with what
// tokenmeter metered, explaining the difference where the evidence allows and
// reporting the rest as a residual. Formats and method: docs/procurement.md.
package bill

import (
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/confload"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// Formats of cost reports.
const (
	FormatOpenAICosts   = "openai_costs"          // GET /v1/organization/costs response pages (JSON)
	FormatAnthropicCost = "anthropic_cost_report" // GET /v1/organizations/cost_report response pages (JSON)
	FormatFOCUS         = "focus"                 // FOCUS cost and usage CSV (AWS Data Exports, Azure Cost Management, Google Cloud)
)

// Config is the bill section: where the reports are and how to read them.
type Config struct {
	// ResidualAlertPercent: alert when a provider-day's unexplained residual
	// exceeds this share of what was billed that day (default "1").
	ResidualAlertPercent pricing.Amount `yaml:"residual_alert_percent,omitempty"`
	Sources              []Source       `yaml:"sources"`
	dir                  string         // files are relative to the config file's directory
}

// Source is one provider's cost reports.
type Source struct {
	// Provider is the OTel gen_ai.provider.name the lines belong to (required
	// for openai_costs and anthropic_cost_report; for focus, lines whose
	// model mapping names a provider use that one).
	Provider string   `yaml:"provider"`
	Format   string   `yaml:"format"`
	Files    []string `yaml:"files"`
	// DayTimeZone is the zone whose calendar days the bill's daily lines
	// follow (default UTC). Metered usage is re-bucketed into those days, and
	// the shift is reported as the day-boundary explanation.
	DayTimeZone string `yaml:"day_time_zone,omitempty"`
	// Models maps bill lines to catalogue models and token classes by
	// regular expression on the line's text (OpenAI line_item, FOCUS
	// SkuMeter or ChargeDescription). Named groups `model` and `class` may be
	// used instead of fixed values. Default for openai_costs:
	// `^(?P<model>[^,]+), (?P<class>.+)$`; Anthropic lines carry model and
	// token_type themselves.
	Models []ModelMap `yaml:"models,omitempty"`
}

// ModelMap maps bill lines whose text matches Match.
type ModelMap struct {
	Match    string `yaml:"match"`
	Provider string `yaml:"provider,omitempty"`
	Model    string `yaml:"model,omitempty"`
	Class    string `yaml:"class,omitempty"` // input | cache_read | cache_write | cache_write_1h | output | reasoning
	re       *regexp.Regexp
}

// Classes a bill line can be mapped to (the pricing engine's token classes).
var classes = map[string]bool{"input": true, "cache_read": true, "cache_write": true, "cache_write_1h": true, "output": true, "reasoning": true}

// Read reads a bill config file (YAML) and validates it.
func Read(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := confload.Strict(b, &c); err != nil {
		return nil, fmt.Errorf("bill: %w", err)
	}
	c.dir = filepath.Dir(path)
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	if !c.ResidualAlertPercent.Set {
		c.ResidualAlertPercent, _ = pricing.A("1")
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.DayTimeZone == "" {
			s.DayTimeZone = "UTC"
		}
		if s.Format == FormatOpenAICosts && len(s.Models) == 0 {
			s.Models = []ModelMap{{Match: `^(?P<model>[^,]+), (?P<class>.+)$`}}
		}
	}
}

// Validate reports every problem with its path and compiles the patterns.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, a ...any) { errs = append(errs, fmt.Errorf(path+": "+format, a...)) }
	if c.ResidualAlertPercent.D.IsNegative() || c.ResidualAlertPercent.D.GreaterThan(decimal.NewFromInt(100)) {
		bad("residual_alert_percent", "%s must be 0..100", c.ResidualAlertPercent)
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		p := fmt.Sprintf("sources[%d]", i)
		switch s.Format {
		case FormatOpenAICosts, FormatAnthropicCost:
			if s.Provider == "" {
				bad(p+".provider", "required for format %s", s.Format)
			}
		case FormatFOCUS:
		default:
			bad(p+".format", "%q is not %s, %s or %s", s.Format, FormatOpenAICosts, FormatAnthropicCost, FormatFOCUS)
		}
		if len(s.Files) == 0 {
			bad(p+".files", "at least one file is required")
		}
		if _, err := time.LoadLocation(s.DayTimeZone); err != nil {
			bad(p+".day_time_zone", "%v", err)
		}
		for j := range s.Models {
			m := &s.Models[j]
			mp := fmt.Sprintf("%s.models[%d]", p, j)
			re, err := regexp.Compile(m.Match)
			if err != nil || m.Match == "" {
				bad(mp+".match", "not a regular expression: %q", m.Match)
				continue
			}
			m.re = re
			if m.Class != "" && !classes[m.Class] {
				bad(mp+".class", "%q is not a token class", m.Class)
			}
			if m.Model == "" && re.SubexpIndex("model") < 0 {
				bad(mp+".model", "required unless match has a (?P<model>...) group")
			}
		}
	}
	return errors.Join(errs...)
}

// resolve maps a line's text to provider, model and class ("" when no
// mapping matches).
func (s *Source) resolve(text string) (provider, model, class string) {
	for _, m := range s.Models {
		if m.re == nil {
			continue
		}
		sub := m.re.FindStringSubmatch(text)
		if sub == nil {
			continue
		}
		provider, model, class = m.Provider, m.Model, m.Class
		if i := m.re.SubexpIndex("model"); i >= 0 && model == "" {
			model = sub[i]
		}
		if i := m.re.SubexpIndex("class"); i >= 0 && class == "" {
			class = normaliseClass(sub[i])
		}
		return provider, model, class
	}
	return "", "", ""
}

// normaliseClass maps providers' wording of token classes to the engine's.
func normaliseClass(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "input", "uncached_input_tokens", "input tokens", "uncached input":
		return "input"
	case "cached input", "cache_read_input_tokens", "cache read", "cached_input":
		return "cache_read"
	case "cache_creation.ephemeral_5m_input_tokens", "cache write", "cache_write":
		return "cache_write"
	case "cache_creation.ephemeral_1h_input_tokens", "cache_write_1h":
		return "cache_write_1h"
	case "output", "output_tokens", "output tokens":
		return "output"
	case "reasoning":
		return "reasoning"
	}
	return ""
}
