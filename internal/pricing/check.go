package pricing

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Severity of a catalogue problem. Errors make `tokenmeter prices check` fail.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Problem is one finding of Check.
type Problem struct {
	Severity string
	Where    string // file: models[i] (provider/model)
	Message  string
}

func (p Problem) String() string { return p.Severity + ": " + p.Where + ": " + p.Message }

// Check lints catalogue files as `tokenmeter prices check` does and returns
// every finding, errors first. Errors: invalid or missing fields, missing
// input/output prices, negative prices, unknown tiers, bad patterns, names
// claimed by two models, overlapping validity intervals, gaps between
// consecutive intervals of one model, rows without source or read date.
// Warnings: long-context thresholds without long-context prices for a tier,
// cache reads priced above input, all-zero token prices, models with no price
// in force at now.
func Check(files []*CatalogueFile, names []string, now time.Time) []Problem {
	var out []Problem
	add := func(sev, where, format string, args ...any) {
		out = append(out, Problem{Severity: sev, Where: where, Message: fmt.Sprintf(format, args...)})
	}
	for len(names) < len(files) {
		names = append(names, fmt.Sprintf("catalogue[%d]", len(names)))
	}
	type span struct {
		from, to int64
		where    string
	}
	spans := map[[2]string][]span{}
	owner := map[[2]string]string{}
	for fi, f := range files {
		for i := range f.Models {
			m := &f.Models[i]
			where := fmt.Sprintf("%s: models[%d] (%s/%s)", names[fi], i, m.Provider, m.Model)
			e, err := resolveEntry(m, f, names[fi], i)
			if err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					add(SeverityError, where, "%s", line)
				}
				continue
			}
			if strings.TrimSpace(m.Source) == "" {
				add(SeverityError, where, "source is required (where the prices were read)")
			}
			if _, err := time.Parse(time.DateOnly, m.ReadOn); err != nil {
				add(SeverityError, where, "read_on %q must be the YYYY-MM-DD the prices were read", m.ReadOn)
			}
			for _, p := range m.Patterns {
				if _, err := compilePattern(p); err != nil {
					add(SeverityError, where, "pattern %q: %v", p, err)
				}
			}
			for _, n := range append([]string{m.Model}, m.Aliases...) {
				k := [2]string{e.provider, strings.ToLower(n)}
				if o, ok := owner[k]; ok && o != e.model {
					add(SeverityError, where, "name %q already belongs to %s/%s", n, e.provider, o)
				}
				owner[k] = e.model
			}
			if e.longThreshold > 0 {
				for _, t := range tierNames {
					if e.tiers[t] != nil && e.tiers[t+LongContextSuffix] == nil {
						add(SeverityWarning, where, "tier %s has no %s%s prices: requests above %d input tokens on it will be refused", t, t, LongContextSuffix, e.longThreshold)
					}
				}
			}
			tiers := make([]string, 0, len(m.Prices))
			for t := range m.Prices {
				tiers = append(tiers, t)
			}
			sort.Strings(tiers)
			for _, t := range tiers {
				r := m.Prices[t]
				if r.CacheRead.Set && r.CacheRead.D.GreaterThan(r.Input.D) {
					add(SeverityWarning, where, "prices.%s: cache_read %s is above input %s", t, r.CacheRead.D, r.Input.D)
				}
				if r.Input.D.IsZero() && r.Output.D.IsZero() {
					add(SeverityWarning, where, "prices.%s: input and output are both zero", t)
				}
			}
			k := [2]string{e.provider, e.model}
			spans[k] = append(spans[k], span{e.from, e.to, where})
		}
	}
	keys := make([][2]string, 0, len(spans))
	for k := range spans {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"/"+keys[i][1] < keys[j][0]+"/"+keys[j][1] })
	nowMs := now.UnixMilli()
	for _, k := range keys {
		ss := spans[k]
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].from < ss[j].from })
		inForce := false
		for i, s := range ss {
			if s.from <= nowMs && nowMs < s.to {
				inForce = true
			}
			if i == 0 {
				continue
			}
			prev := ss[i-1]
			switch {
			case s.from < prev.to:
				add(SeverityError, s.where, "overlaps %s: [%s, %s) and [%s, %s)", prev.where,
					formatInstant(prev.from), formatTo(prev.to), formatInstant(s.from), formatTo(s.to))
			case s.from > prev.to:
				add(SeverityError, s.where, "gap after %s: no price from %s to %s", prev.where, formatInstant(prev.to), formatInstant(s.from))
			}
		}
		if !inForce && !now.IsZero() {
			last := ss[len(ss)-1]
			add(SeverityWarning, last.where, "no price in force at %s (events now would be refused as unknown_model)", now.UTC().Format(time.RFC3339))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Severity == SeverityError && out[j].Severity != SeverityError })
	return out
}

// HasErrors reports whether any problem is an error.
func HasErrors(ps []Problem) bool {
	for _, p := range ps {
		if p.Severity == SeverityError {
			return true
		}
	}
	return false
}
