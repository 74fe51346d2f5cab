// Package procurement holds what the buyer-side packages share: usage summed
// per month and model (the input of the contract simulator and the commitment
// ledger), the scenarios a forecast supplies, and exact money helpers.
//
// Subpackages: offers (contract simulator), commit (commitments and prepaid
// credits drawn down by priced usage), bill (providers' cost reports and the
// daily reconciliation), chargeback (allocation to cost centres).
package procurement

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// Usage is the metered usage of one tenant on one provider/model/tier in one
// calendar month, summed over requests. Counts follow UsageEvent's rules
// (input includes cache reads and writes, output includes reasoning).
// LongContext says the requests were billed at the tier's long-context
// prices (pricing_tier *_long_context): that is decided per request, so it
// is carried, never recomputed from the sums.
type Usage struct {
	Period      string // YYYY-MM
	Tenant      string
	Provider    string
	Model       string
	Tier        string // standard | batch | flex | priority
	LongContext bool

	Requests                int64
	InputTokens             int64
	CacheReadInputTokens    int64
	CacheWriteInputTokens   int64
	CacheWrite1hInputTokens int64
	OutputTokens            int64
	ReasoningTokens         int64
	Units                   event.Units
}

// PeriodStart is the first instant of a YYYY-MM period in UTC: the instant
// whose catalogue entry, contract and FX rate price the month.
func PeriodStart(period string) (time.Time, error) {
	t, err := time.Parse("2006-01", period)
	if err != nil {
		return time.Time{}, fmt.Errorf("period %q is not YYYY-MM", period)
	}
	return t.UTC(), nil
}

// AddMonths returns the YYYY-MM period n months after period.
func AddMonths(period string, n int) (string, error) {
	t, err := PeriodStart(period)
	if err != nil {
		return "", err
	}
	return t.AddDate(0, n, 0).Format("2006-01"), nil
}

// Event is the usage as one synthetic event for pricing.Engine.PriceAggregate.
func (u *Usage) Event() (event.UsageEvent, error) {
	at, err := PeriodStart(u.Period)
	if err != nil {
		return event.UsageEvent{}, err
	}
	return event.UsageEvent{
		EventID: "aggregate", EventTime: at, Tenant: u.Tenant, Provider: u.Provider, Model: u.Model, ServiceTier: u.Tier,
		InputTokens: u.InputTokens, CacheReadInputTokens: u.CacheReadInputTokens, CacheWriteInputTokens: u.CacheWriteInputTokens,
		CacheWrite1hInputTokens: u.CacheWrite1hInputTokens, OutputTokens: u.OutputTokens, ReasoningTokens: u.ReasoningTokens,
		Units: u.Units,
	}, nil
}

// Price prices u with eng exactly as the pipeline priced its requests.
func Price(eng *pricing.Engine, u *Usage) (*event.PricedUsageEvent, error) {
	ev, err := u.Event()
	if err != nil {
		return nil, err
	}
	out := &event.PricedUsageEvent{UsageEvent: ev}
	if err := eng.PriceAggregate(&ev, u.LongContext, "", out); err != nil {
		return nil, fmt.Errorf("%s %s/%s %s: %w", u.Period, u.Provider, u.Model, u.Tier, err)
	}
	return out, nil
}

// Scale returns u with every count multiplied by num/den, rounded down per
// count; the subsets are scaled before their totals are re-derived so that
// the scaled usage still satisfies invariant 4.
func (u Usage) Scale(num, den int64) Usage {
	s := func(v int64) int64 { return mulDiv(v, num, den) }
	uncached := u.InputTokens - u.CacheReadInputTokens - u.CacheWriteInputTokens
	w5 := u.CacheWriteInputTokens - u.CacheWrite1hInputTokens
	nonReason := u.OutputTokens - u.ReasoningTokens
	out := u
	out.CacheReadInputTokens = s(u.CacheReadInputTokens)
	out.CacheWrite1hInputTokens = s(u.CacheWrite1hInputTokens)
	out.CacheWriteInputTokens = s(w5) + out.CacheWrite1hInputTokens
	out.InputTokens = s(uncached) + out.CacheReadInputTokens + out.CacheWriteInputTokens
	out.ReasoningTokens = s(u.ReasoningTokens)
	out.OutputTokens = s(nonReason) + out.ReasoningTokens
	out.Requests = s(u.Requests)
	out.Units = event.Units{Images: s(u.Units.Images), AudioSeconds: s(u.Units.AudioSeconds), Requests: s(u.Units.Requests),
		ToolCalls: s(u.Units.ToolCalls), WebSearches: s(u.Units.WebSearches)}
	return out
}

// mulDiv is v×num/den rounded down, without overflow in the product (counts
// times capacity can pass 2^63); the result fits whenever num <= den or the
// scaled count is representable.
func mulDiv(v, num, den int64) int64 {
	var p big.Int
	p.Mul(big.NewInt(v), big.NewInt(num))
	p.Quo(&p, big.NewInt(den))
	return p.Int64()
}

// Sub returns u − v count by count (v must be a part of u built by Scale).
func (u Usage) Sub(v Usage) Usage {
	out := u
	out.Requests -= v.Requests
	out.InputTokens -= v.InputTokens
	out.CacheReadInputTokens -= v.CacheReadInputTokens
	out.CacheWriteInputTokens -= v.CacheWriteInputTokens
	out.CacheWrite1hInputTokens -= v.CacheWrite1hInputTokens
	out.OutputTokens -= v.OutputTokens
	out.ReasoningTokens -= v.ReasoningTokens
	out.Units.Images -= v.Units.Images
	out.Units.AudioSeconds -= v.Units.AudioSeconds
	out.Units.Requests -= v.Units.Requests
	out.Units.ToolCalls -= v.Units.ToolCalls
	out.Units.WebSearches -= v.Units.WebSearches
	return out
}

// Tokens is input + output tokens (the throughput a provisioned unit serves).
func (u *Usage) Tokens() int64 { return u.InputTokens + u.OutputTokens }

// Scenario is monthly usage for the contract term under one adoption
// assumption. Label says where it came from, e.g. "forecast v3: low" or
// "scaled actuals ×0.50 (not a forecast)".
type Scenario struct {
	Name  string
	Label string
	Usage []Usage
}

// ScenarioSource supplies "monthly usage by model under a scenario" for a
// term. internal/forecast implements it for the approved forecast; until it
// is wired, ScaledActuals stands in, clearly labelled.
type ScenarioSource interface {
	Scenarios(ctx context.Context, tenant, provider string, months []string) ([]Scenario, error)
}

// UsageSource supplies the tenant's metered usage over a window of months
// (from ClickHouse's priced usage, or a usage CSV).
type UsageSource interface {
	Usage(ctx context.Context, tenant, provider string, months []string) ([]Usage, error)
}

// ScaledActuals makes scenarios from the actual usage of a window: term month
// i takes actual month i mod n of the window, every count scaled by the
// factor (percent, rounded down per count). It is not a forecast; its labels
// say so.
type ScaledActuals struct {
	Actual  []Usage
	Percent map[string]int64 // scenario name → percent of actuals, e.g. low: 50
}

// Scenarios implements ScenarioSource.
func (s ScaledActuals) Scenarios(_ context.Context, tenant, provider string, months []string) ([]Scenario, error) {
	var window []string
	seen := map[string]bool{}
	for _, u := range s.Actual {
		if !seen[u.Period] {
			seen[u.Period] = true
			window = append(window, u.Period)
		}
	}
	sort.Strings(window)
	if len(window) == 0 {
		return nil, errors.New("scaled actuals: no actual usage in the window")
	}
	names := make([]string, 0, len(s.Percent))
	for n := range s.Percent {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return s.Percent[names[i]] < s.Percent[names[j]] })
	var out []Scenario
	for _, n := range names {
		pct := s.Percent[n]
		sc := Scenario{Name: n, Label: fmt.Sprintf("scaled actuals x%s of %s..%s (not a forecast)",
			decimal.New(pct, -2).StringFixed(2), window[0], window[len(window)-1])}
		for i, m := range months {
			src := window[i%len(window)]
			for _, u := range s.Actual {
				if u.Period != src || (tenant != "" && u.Tenant != tenant) || (provider != "" && u.Provider != provider) {
					continue
				}
				v := u.Scale(pct, 100)
				v.Period = m
				sc.Usage = append(sc.Usage, v)
			}
		}
		out = append(out, sc)
	}
	return out, nil
}

// usageColumns is the usage CSV header, in order.
var usageColumns = []string{"period", "tenant", "provider", "model", "tier", "long_context", "requests",
	"input_tokens", "cache_read_input_tokens", "cache_write_input_tokens", "cache_write_1h_input_tokens",
	"output_tokens", "reasoning_tokens"}

// UsageColumns is the header of the usage CSV ReadUsageCSV reads.
func UsageColumns() []string { return append([]string(nil), usageColumns...) }

// ReadUsageCSV reads monthly usage in the documented CSV form (header
// UsageColumns; `#` lines are comments). Every bad row is reported with its
// line.
func ReadUsageCSV(r io.Reader) ([]Usage, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = len(usageColumns)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("usage csv: header: %w", err)
	}
	for i, c := range usageColumns {
		if strings.TrimSpace(head[i]) != c {
			return nil, fmt.Errorf("usage csv: column %d is %q, want %q", i+1, head[i], c)
		}
	}
	var out []Usage
	var errs []error
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil { // a *csv.ParseError names its line; FieldPos is only valid after a good record
			errs = append(errs, fmt.Errorf("usage csv: %w", err))
			break
		}
		line, _ := cr.FieldPos(0)
		u := Usage{Period: rec[0], Tenant: rec[1], Provider: rec[2], Model: rec[3], Tier: rec[4]}
		if _, err := PeriodStart(u.Period); err != nil {
			errs = append(errs, fmt.Errorf("usage csv line %d: %w", line, err))
		}
		switch rec[5] {
		case "true", "1":
			u.LongContext = true
		case "false", "0", "":
		default:
			errs = append(errs, fmt.Errorf("usage csv line %d: long_context %q is not true/false", line, rec[5]))
		}
		dst := []*int64{&u.Requests, &u.InputTokens, &u.CacheReadInputTokens, &u.CacheWriteInputTokens,
			&u.CacheWrite1hInputTokens, &u.OutputTokens, &u.ReasoningTokens}
		for i, d := range dst {
			v, err := strconv.ParseInt(strings.TrimSpace(rec[6+i]), 10, 64)
			if err != nil || v < 0 {
				errs = append(errs, fmt.Errorf("usage csv line %d: %s %q is not a non-negative integer", line, usageColumns[6+i], rec[6+i]))
				continue
			}
			*d = v
		}
		out = append(out, u)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Percentile is the nearest-rank percentile (p in 1..100) of vs: the
// smallest value with at least p % of the values at or below it. With one
// value per scenario and no weights this is the honest reading of
// "P10/P50/P90 across scenarios"; it never interpolates between scenarios.
func Percentile(vs []decimal.Decimal, p int) decimal.Decimal {
	if len(vs) == 0 {
		return decimal.Zero
	}
	s := append([]decimal.Decimal(nil), vs...)
	sort.Slice(s, func(i, j int) bool { return s[i].LessThan(s[j]) })
	rank := (p*len(s) + 99) / 100 // ceil(p/100 × n)
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}

// Cents rounds an amount half away from zero to 2 places, for presentation only.
func Cents(d decimal.Decimal) string { return d.Round(2).StringFixed(2) }
