package pricing

import (
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/confload"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/shopspring/decimal"
)

// ContractsFile is the contracts YAML file.
type ContractsFile struct {
	Contracts []Contract `yaml:"contracts"`
}

// Contract is negotiated terms, effective-dated. Empty Tenant, Provider or
// Model match every value. When several contracts match an event, the most
// specific wins: a model match beats a provider-only match, which beats a
// tenant-only match; two equally specific contracts in force at the same
// instant are a load error.
type Contract struct {
	ID       string `yaml:"id"`
	Tenant   string `yaml:"tenant,omitempty"`
	Provider string `yaml:"provider,omitempty"`
	// Model is the catalogue's canonical model name (aliases and patterns
	// resolve to it first).
	Model string `yaml:"model,omitempty"`
	// Tiers limits the contract to these tiers (standard, batch, ...; a tier
	// covers its _long_context variant). Empty: every tier.
	Tiers     []string `yaml:"tiers,omitempty"`
	ValidFrom string   `yaml:"valid_from"`
	ValidTo   string   `yaml:"valid_to,omitempty"`
	// DiscountPercent off list for every class without a contracted price,
	// e.g. "15" or "12.5". 0..100.
	DiscountPercent Amount `yaml:"discount_percent,omitempty"`
	// Prices are contracted unit prices per tier and class (per million tokens,
	// per unit); a class given here replaces list × (1 − discount).
	Prices map[string]Rates `yaml:"prices,omitempty"`
}

type contract struct {
	id                      string
	tenant, provider, model string
	tiers                   map[string]bool
	from, to                int64
	rank                    int
	// rates holds the contracted rate set per catalogue tier it applies to,
	// precomputed at load so pricing does no decimal work for contracts.
	rates map[*tierPrice]*rateSet
	c     *Contract
}

func (k *contract) matches(tenant, provider, model string, ms int64) bool {
	return (k.tenant == "" || k.tenant == tenant) &&
		(k.provider == "" || k.provider == provider) &&
		(k.model == "" || k.model == model) &&
		k.from <= ms && ms < k.to
}

// ReadContracts parses a contracts file strictly.
func ReadContracts(path string) (*ContractsFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f ContractsFile
	if err := confload.Strict(b, &f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

var hundred = decimal.NewFromInt(100)

// buildContracts resolves contracts against the catalogue.
func buildContracts(f *ContractsFile, cat *catalogue) ([]*contract, error) {
	var errs []error
	var out []*contract
	seen := map[string]bool{}
	for i := range f.Contracts {
		c := &f.Contracts[i]
		at := fmt.Sprintf("contracts[%d] (%s)", i, c.ID)
		bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(at+": "+format, args...)) }
		k := &contract{
			id: c.ID, tenant: c.Tenant, provider: cat.canonicalProvider(strings.ToLower(c.Provider)),
			model: strings.ToLower(c.Model), to: math.MaxInt64, rates: map[*tierPrice]*rateSet{}, c: c,
		}
		if c.ID == "" {
			bad("id is required")
		} else if seen[c.ID] {
			bad("id is used twice")
		}
		seen[c.ID] = true
		if k.model != "" && k.provider == "" {
			bad("model needs provider")
		}
		if k.model != "" {
			k.rank += 4
		}
		if k.provider != "" {
			k.rank += 2
		}
		if k.tenant != "" {
			k.rank++
		}
		if t, err := parseInstant(c.ValidFrom); err != nil {
			bad("valid_from: %w", err)
		} else {
			k.from = t.UnixMilli()
		}
		if c.ValidTo != "" {
			if t, err := parseInstant(c.ValidTo); err != nil {
				bad("valid_to: %w", err)
			} else if k.to = t.UnixMilli(); k.to <= k.from {
				bad("valid_to is not after valid_from")
			}
		}
		if len(c.Tiers) > 0 {
			k.tiers = map[string]bool{}
			for _, t := range c.Tiers {
				if !knownTiers[t] || strings.HasSuffix(t, LongContextSuffix) {
					bad("tiers: unknown tier %q", t)
				}
				k.tiers[t] = true
			}
		}
		disc := c.DiscountPercent
		if disc.Set && (disc.D.IsNegative() || disc.D.GreaterThan(hundred)) {
			bad("discount_percent %s must be between 0 and 100", disc.D)
		}
		if !disc.Set && len(c.Prices) == 0 {
			bad("needs discount_percent or prices")
		}
		for tier, r := range c.Prices {
			if !knownTiers[tier] {
				bad("prices.%s: unknown tier", tier)
			}
			r := r
			if err := checkNonNegative(&r); err != nil {
				bad("prices.%s: %w", tier, err)
			}
		}
		if k.model != "" {
			if pi := cat.providers[k.provider]; pi == nil || pi.byName[k.model] == nil || pi.byName[k.model].model != k.model {
				bad("model %s/%s is not a canonical model of the catalogue", k.provider, k.model)
			}
		}
		if len(errs) > 0 {
			continue
		}
		// Precompute the contracted rates of every catalogue tier it can apply to.
		factor := decimal.NewFromInt(1)
		if disc.Set {
			factor = hundred.Sub(disc.D).Shift(-2) // exact: no division
		}
		for _, h := range cat.histories {
			if (k.provider != "" && h.provider != k.provider) || (k.model != "" && h.model != k.model) {
				continue
			}
			for _, e := range h.entries {
				for name, tp := range e.tiers {
					base := strings.TrimSuffix(name, LongContextSuffix)
					if k.tiers != nil && !k.tiers[base] {
						continue
					}
					// A contract applies to a tier only where it has terms for it
					// (a discount, or prices for that tier); elsewhere a less
					// specific contract, or the list price, applies.
					if _, priced := c.Prices[name]; !disc.Set && !priced {
						continue
					}
					merged := contractedRates(tp.rates, c.Prices[name], factor)
					d, _ := merged.slots()
					k.rates[tp] = newRateSet(d)
				}
			}
		}
		out = append(out, k)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].rank > out[j].rank })
	// Equally specific contracts with the same scope must not overlap in time.
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			a, b := out[i], out[j]
			if a.tenant == b.tenant && a.provider == b.provider && a.model == b.model &&
				a.from < b.to && b.from < a.to && tiersOverlap(a.tiers, b.tiers) {
				errs = append(errs, fmt.Errorf("contracts %s and %s have the same scope and overlap in time", a.id, b.id))
			}
		}
	}
	return out, errors.Join(errs...)
}

func tiersOverlap(a, b map[string]bool) bool {
	if a == nil || b == nil {
		return true
	}
	for t := range a {
		if b[t] {
			return true
		}
	}
	return false
}

// checkNonNegative rejects negative contracted prices (classes may be omitted).
func checkNonNegative(r *Rates) error {
	d, set := r.slots()
	for i := range d {
		if set[i] && d[i].IsNegative() {
			return fmt.Errorf("negative price %s", d[i])
		}
	}
	return nil
}

// contractedRates merges a catalogue tier's rates with a contract: a class the
// contract prices takes that price, a class the catalogue prices takes
// list × factor, and a class neither prices follows the usual defaults
// (cache_read -> input, reasoning -> output, ...) over the merged values, so
// a contracted output price also covers defaulted reasoning.
func contractedRates(list, con Rates, factor decimal.Decimal) Rates {
	pick := func(l, c Amount) Amount {
		switch {
		case c.Set:
			return c
		case l.Set:
			return Amount{D: l.D.Mul(factor), Set: true}
		}
		return Amount{}
	}
	return Rates{
		Input: pick(list.Input, con.Input), CacheRead: pick(list.CacheRead, con.CacheRead),
		CacheWrite: pick(list.CacheWrite, con.CacheWrite), CacheWrite1h: pick(list.CacheWrite1h, con.CacheWrite1h),
		Output: pick(list.Output, con.Output), Reasoning: pick(list.Reasoning, con.Reasoning),
		Image: pick(list.Image, con.Image), AudioSecond: pick(list.AudioSecond, con.AudioSecond),
		Request: pick(list.Request, con.Request), ToolCall: pick(list.ToolCall, con.ToolCall),
		WebSearch: pick(list.WebSearch, con.WebSearch),
	}
}
