package pricing

import (
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/confload"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CatalogueFile is one price catalogue YAML file.
type CatalogueFile struct {
	// Version tags the catalogue; it is stamped on every priced event as
	// price_source (e.g. "tokenmeter-2026-11-28"). Default: the file name.
	Version string `yaml:"version"`
	// Currency of every price in the file (ISO 4217). Default USD.
	Currency string `yaml:"currency,omitempty"`
	// ProviderAliases maps other spellings of a provider to the canonical
	// OpenTelemetry gen_ai.provider.name used in Models (google -> gcp.gemini).
	ProviderAliases map[string]string `yaml:"provider_aliases,omitempty"`
	// Models are the effective-dated entries.
	Models []ModelEntry `yaml:"models"`
}

// ModelEntry is the price of one provider/model during [ValidFrom, ValidTo).
type ModelEntry struct {
	Provider string `yaml:"provider"`
	Model    string `yaml:"model"`
	// Aliases are other exact names of the same model (case-insensitive).
	Aliases []string `yaml:"aliases,omitempty"`
	// Patterns are Go regular expressions, anchored at both ends and matched
	// against the lower-cased event model, for dated snapshots and
	// region-prefixed ids (`gpt-4o-\d{4}-\d{2}-\d{2}`). Exact names and aliases
	// win over patterns; among patterns the first in file order wins.
	Patterns []string `yaml:"patterns,omitempty"`
	// ValidFrom is inclusive, ValidTo exclusive (empty: open-ended). A date
	// (2026-01-01) means 00:00 UTC that day; RFC 3339 timestamps are accepted.
	ValidFrom string `yaml:"valid_from"`
	ValidTo   string `yaml:"valid_to,omitempty"`
	// LongContextThreshold: a request whose input_tokens (including cache reads
	// and writes) is strictly greater than this is billed entirely, every
	// class, at the tier's "<tier>_long_context" prices. 0: no long-context tier.
	LongContextThreshold int64 `yaml:"long_context_threshold,omitempty"`
	// Source is where the prices were read (URL) and ReadOn the date (YYYY-MM-DD).
	Source string `yaml:"source"`
	ReadOn string `yaml:"read_on"`
	// Notes say how figures not printed at Source were derived (e.g. batch = 50% of standard).
	Notes string `yaml:"notes,omitempty"`
	// Prices per tier: standard, batch, flex, priority, and the long-context
	// variants standard_long_context, batch_long_context, ...
	Prices map[string]Rates `yaml:"prices"`
}

// LongContextSuffix is appended to a tier's name for its long-context prices.
const LongContextSuffix = "_long_context"

// knownTiers are the tier keys a catalogue may use.
var knownTiers = map[string]bool{
	"standard": true, "batch": true, "flex": true, "priority": true,
	"standard" + LongContextSuffix: true, "batch" + LongContextSuffix: true,
	"flex" + LongContextSuffix: true, "priority" + LongContextSuffix: true,
}

// ReadCatalogue parses one catalogue file strictly (unknown fields are errors,
// so a typo such as `cache_reads:` cannot silently become "not set").
func ReadCatalogue(path string) (*CatalogueFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCatalogue(b, path)
}

// ParseCatalogue parses catalogue YAML; name is used for the default version.
func ParseCatalogue(b []byte, name string) (*CatalogueFile, error) {
	var f CatalogueFile
	if err := confload.Strict(b, &f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if f.Version == "" {
		f.Version = strings.TrimSuffix(baseName(name), ".yaml")
	}
	if f.Currency == "" {
		f.Currency = "USD"
	}
	return &f, nil
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// parseInstant parses a valid_from/valid_to/date value: YYYY-MM-DD (00:00 UTC)
// or RFC 3339.
func parseInstant(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither YYYY-MM-DD nor RFC 3339", s)
	}
	return t.UTC(), nil
}

func formatInstant(ms int64) string {
	t := time.UnixMilli(ms).UTC()
	if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0 {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339Nano)
}

// entry is a resolved ModelEntry.
type entry struct {
	provider, model string
	from, to        int64 // unix ms, [from, to); to == math.MaxInt64 when open
	longThreshold   int64
	currency        string
	version         string
	sourceURL       string
	tiers           map[string]*tierPrice
	tierByIndex     [2 * len(tierNames)]*tierPrice // tierIndex, +len(tierNames) for long context
	file            string
	index           int
}

// tierPrice is one tier of one entry.
type tierPrice struct {
	name    string // e.g. standard, batch_long_context
	priceID string // provider/model/tier@valid_from
	rates   Rates  // as written, for contracts and `prices show`
	list    *rateSet
}

// history is every entry of one canonical provider/model, ordered by from.
type history struct {
	provider, model string
	entries         []*entry
}

// inForce returns the entry in force at ms, or nil.
func (h *history) inForce(ms int64) *entry {
	// Few entries per model: a reverse scan beats a binary search here.
	for i := len(h.entries) - 1; i >= 0; i-- {
		e := h.entries[i]
		if e.from <= ms {
			if ms < e.to {
				return e
			}
			return nil
		}
	}
	return nil
}

type pattern struct {
	re *regexp.Regexp
	h  *history
}

// providerIndex resolves model names of one canonical provider.
type providerIndex struct {
	byName   map[string]*history // canonical names and aliases, lower-case
	patterns []pattern

	// matched caches pattern results by model name (nil: no match). Readers
	// load the map without locking; a new name copies it under mu (rare: at
	// most maxPatternCache names), so the hot path never contends.
	mu      sync.Mutex
	matched atomic.Pointer[map[string]*history]
}

func (pi *providerIndex) remember(model string, h *history) {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	old := pi.matched.Load()
	n := 0
	if old != nil {
		if _, ok := (*old)[model]; ok {
			return
		}
		n = len(*old)
	}
	if n >= maxPatternCache {
		return
	}
	m := make(map[string]*history, n+1)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[model] = h
	pi.matched.Store(&m)
}

// catalogue is the merged, indexed set of catalogue files.
type catalogue struct {
	providerAlias map[string]string // lower-case alias -> canonical provider
	providers     map[string]*providerIndex
	histories     []*history
	currency      string
}

// buildCatalogue merges files in order and reports every problem found.
func buildCatalogue(files []*CatalogueFile, names []string) (*catalogue, error) {
	c := &catalogue{providerAlias: map[string]string{}, providers: map[string]*providerIndex{}}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	hist := map[[2]string]*history{}
	aliasOwner := map[[2]string]string{} // provider/alias -> canonical model
	for fi, f := range files {
		name := names[fi]
		if c.currency == "" {
			c.currency = f.Currency
		} else if f.Currency != c.currency {
			bad("%s: currency %s differs from %s in an earlier catalogue; one pricing currency per engine", name, f.Currency, c.currency)
		}
		for a, p := range f.ProviderAliases {
			a, p = strings.ToLower(a), strings.ToLower(p)
			if prev, ok := c.providerAlias[a]; ok && prev != p {
				bad("%s: provider alias %q maps to both %q and %q", name, a, prev, p)
			}
			c.providerAlias[a] = p
		}
		for i := range f.Models {
			m := &f.Models[i]
			at := fmt.Sprintf("%s: models[%d] (%s/%s)", name, i, m.Provider, m.Model)
			e, err := resolveEntry(m, f, name, i)
			if err != nil {
				bad("%s: %w", at, err)
				continue
			}
			key := [2]string{e.provider, e.model}
			h := hist[key]
			if h == nil {
				h = &history{provider: e.provider, model: e.model}
				hist[key] = h
				c.histories = append(c.histories, h)
			}
			h.entries = append(h.entries, e)
			pi := c.providers[e.provider]
			if pi == nil {
				pi = &providerIndex{byName: map[string]*history{}}
				c.providers[e.provider] = pi
			}
			for _, n := range append([]string{m.Model}, m.Aliases...) {
				n = strings.ToLower(n)
				k := [2]string{e.provider, n}
				if owner, ok := aliasOwner[k]; ok && owner != e.model {
					bad("%s: name %q already belongs to %s/%s", at, n, e.provider, owner)
					continue
				}
				aliasOwner[k] = e.model
				pi.byName[n] = h
			}
			for _, p := range m.Patterns {
				re, err := compilePattern(p)
				if err != nil {
					bad("%s: pattern %q: %w", at, p, err)
					continue
				}
				pi.patterns = append(pi.patterns, pattern{re: re, h: h})
			}
		}
	}
	for _, h := range c.histories {
		sort.SliceStable(h.entries, func(i, j int) bool { return h.entries[i].from < h.entries[j].from })
		for i := 1; i < len(h.entries); i++ {
			a, b := h.entries[i-1], h.entries[i]
			if b.from < a.to {
				bad("%s/%s: entries %s models[%d] [%s, %s) and %s models[%d] [%s, ...) overlap",
					h.provider, h.model, a.file, a.index, formatInstant(a.from), formatTo(a.to), b.file, b.index, formatInstant(b.from))
			}
		}
	}
	if c.currency == "" {
		c.currency = "USD"
	}
	return c, errors.Join(errs...)
}

func formatTo(to int64) string {
	if to == math.MaxInt64 {
		return "open"
	}
	return formatInstant(to)
}

// resolveEntry validates one ModelEntry and builds its rate sets.
func resolveEntry(m *ModelEntry, f *CatalogueFile, file string, index int) (*entry, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	e := &entry{
		provider: strings.ToLower(strings.TrimSpace(m.Provider)),
		model:    strings.ToLower(strings.TrimSpace(m.Model)),
		currency: f.Currency, version: f.Version, sourceURL: m.Source,
		longThreshold: m.LongContextThreshold, tiers: map[string]*tierPrice{},
		file: file, index: index, to: math.MaxInt64,
	}
	if e.provider == "" {
		bad("provider is required")
	}
	if e.model == "" {
		bad("model is required")
	}
	if m.ValidFrom == "" {
		bad("valid_from is required")
	} else if t, err := parseInstant(m.ValidFrom); err != nil {
		bad("valid_from: %w", err)
	} else {
		e.from = t.UnixMilli()
	}
	if m.ValidTo != "" {
		if t, err := parseInstant(m.ValidTo); err != nil {
			bad("valid_to: %w", err)
		} else {
			e.to = t.UnixMilli()
			if e.to <= e.from {
				bad("valid_to %s is not after valid_from %s", m.ValidTo, m.ValidFrom)
			}
		}
	}
	if m.LongContextThreshold < 0 {
		bad("long_context_threshold must not be negative")
	}
	if len(m.Prices) == 0 {
		bad("prices: at least the standard tier is required")
	}
	for tier, r := range m.Prices {
		if !knownTiers[tier] {
			bad("prices.%s: unknown tier (standard, batch, flex, priority, each optionally with %s)", tier, LongContextSuffix)
			continue
		}
		if strings.HasSuffix(tier, LongContextSuffix) && m.LongContextThreshold == 0 {
			bad("prices.%s: long-context prices need long_context_threshold", tier)
		}
		if err := checkRates(&r); err != nil {
			bad("prices.%s: %w", tier, err)
			continue
		}
		d, _ := r.slots()
		e.tiers[tier] = &tierPrice{
			name:    tier,
			priceID: e.provider + "/" + e.model + "/" + tier + "@" + formatInstant(e.from),
			rates:   r,
			list:    newRateSet(d),
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, n := range tierNames {
		e.tierByIndex[i] = e.tiers[n]
		e.tierByIndex[i+len(tierNames)] = e.tiers[n+LongContextSuffix]
	}
	return e, nil
}

// checkRates requires input and output and rejects negative prices.
func checkRates(r *Rates) error {
	var errs []error
	if !r.Input.Set {
		errs = append(errs, errors.New("input price is required"))
	}
	if !r.Output.Set {
		errs = append(errs, errors.New("output price is required"))
	}
	for _, f := range []struct {
		n string
		a Amount
	}{
		{"input", r.Input}, {"cache_read", r.CacheRead}, {"cache_write", r.CacheWrite},
		{"cache_write_1h", r.CacheWrite1h}, {"output", r.Output}, {"reasoning", r.Reasoning},
		{"image", r.Image}, {"audio_second", r.AudioSecond}, {"request", r.Request},
		{"tool_call", r.ToolCall}, {"web_search", r.WebSearch},
	} {
		if f.a.Set && f.a.D.IsNegative() {
			errs = append(errs, fmt.Errorf("%s price %s is negative", f.n, f.a.D))
		}
	}
	return errors.Join(errs...)
}

// compilePattern anchors a catalogue pattern at both ends.
func compilePattern(p string) (*regexp.Regexp, error) { return regexp.Compile("^(?:" + p + ")$") }
