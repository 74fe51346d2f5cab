package bill

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Line is one billed amount, normalised from any format.
type Line struct {
	Source   string // file:line or file:bucket/result
	Format   string
	Provider string
	Account  string // FOCUS BillingAccountId; "" for the API reports
	Project  string // OpenAI project_id, Anthropic workspace_id, FOCUS SubAccountId
	Model    string // as the bill names it ("" when not mapped)
	Class    string // token class when the line is for one ("" otherwise)
	Text     string // the line's own description (line_item, description, SkuMeter…)
	Start    time.Time
	Day      string          // calendar day of Start in the source's day time zone
	Amount   decimal.Decimal // billed, in Currency
	Currency string          // upper-case ISO 4217
	// Quantity in tokens when the bill gives it (FOCUS PricingQuantity in a
	// token PricingUnit), and UnitPrice per token when it gives
	// PricingCurrencyContractedUnitPrice or ContractedUnitPrice (shown only:
	// the unit-price explanation compares amounts, not rounded unit prices).
	HasQuantity bool
	Quantity    int64
	UnitPrice   decimal.Decimal
	// PricingCurrency and PricingAmount: the same charge in the currency the
	// provider priced in (FOCUS PricingCurrencyEffectiveCost), for the FX
	// explanation. Empty when the bill is in its pricing currency.
	PricingCurrency string
	PricingAmount   decimal.Decimal
	ChargeClass     string // FOCUS ChargeClass ("" or Correction)
}

// Load reads every file of every source.
func Load(c *Config) ([]Line, error) {
	var out []Line
	var errs []error
	for i := range c.Sources {
		s := &c.Sources[i]
		for _, f := range s.Files {
			if c.dir != "" && !filepath.IsAbs(f) {
				f = filepath.Join(c.dir, f)
			}
			b, err := os.ReadFile(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("sources[%d]: %w", i, err))
				continue
			}
			ls, err := Parse(s, f, b)
			if err != nil {
				errs = append(errs, fmt.Errorf("sources[%d]: %w", i, err))
				continue
			}
			out = append(out, ls...)
		}
	}
	return out, errors.Join(errs...)
}

// Parse reads one report file of s's format.
func Parse(s *Source, name string, b []byte) ([]Line, error) {
	loc, err := time.LoadLocation(s.DayTimeZone)
	if err != nil {
		return nil, err
	}
	switch s.Format {
	case FormatOpenAICosts:
		return parseOpenAI(s, name, b, loc)
	case FormatAnthropicCost:
		return parseAnthropic(s, name, b, loc)
	case FormatFOCUS:
		return parseFOCUS(s, name, b, loc)
	}
	return nil, fmt.Errorf("unknown format %q", s.Format)
}

// decoder keeps JSON numbers as their text so amounts stay exact.
func decoder(b []byte) *json.Decoder {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d
}

// openAIPage is one page of GET /v1/organization/costs (object "page").
type openAIPage struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string `json:"object"` // bucket
		StartTime int64  `json:"start_time"`
		EndTime   int64  `json:"end_time"`
		Results   []struct {
			Object string `json:"object"` // organization.costs.result
			Amount *struct {
				Value    json.Number `json:"value"`
				Currency string      `json:"currency"`
			} `json:"amount"`
			LineItem  *string `json:"line_item"`
			ProjectID *string `json:"project_id"`
		} `json:"results"`
	} `json:"data"`
}

// parseOpenAI reads one response page, or a JSON array of pages (what
// paging through has_more/next_page collects).
func parseOpenAI(s *Source, name string, b []byte, loc *time.Location) ([]Line, error) {
	var pages []openAIPage
	t := bytes.TrimSpace(b)
	if len(t) > 0 && t[0] == '[' {
		if err := decoder(b).Decode(&pages); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	} else {
		var p openAIPage
		if err := decoder(b).Decode(&p); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		pages = []openAIPage{p}
	}
	var out []Line
	var errs []error
	for pi, p := range pages {
		if p.Object != "page" {
			errs = append(errs, fmt.Errorf("%s: page %d: object %q is not \"page\"", name, pi, p.Object))
			continue
		}
		for bi, bk := range p.Data {
			for ri, r := range bk.Results {
				where := fmt.Sprintf("%s: page %d bucket %d result %d", name, pi, bi, ri)
				if r.Object != "organization.costs.result" {
					errs = append(errs, fmt.Errorf("%s: object %q is not organization.costs.result", where, r.Object))
					continue
				}
				if r.Amount == nil {
					errs = append(errs, fmt.Errorf("%s: no amount", where))
					continue
				}
				amt, err := decimal.NewFromString(r.Amount.Value.String())
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: amount.value %q: %w", where, r.Amount.Value, err))
					continue
				}
				l := Line{Source: where, Format: s.Format, Provider: s.Provider, Amount: amt,
					Currency: strings.ToUpper(r.Amount.Currency), Start: time.Unix(bk.StartTime, 0).UTC()}
				if r.ProjectID != nil {
					l.Project = *r.ProjectID
				}
				if r.LineItem != nil {
					l.Text = *r.LineItem
					_, l.Model, l.Class = s.resolve(l.Text)
				}
				l.Day = l.Start.In(loc).Format(time.DateOnly)
				out = append(out, l)
			}
		}
	}
	return out, errors.Join(errs...)
}

// anthropicReport is one page of GET /v1/organizations/cost_report. Amounts
// are decimal strings in the currency's lowest units (cents for USD).
type anthropicReport struct {
	Data []struct {
		StartingAt string `json:"starting_at"`
		EndingAt   string `json:"ending_at"`
		Results    []struct {
			Amount        string  `json:"amount"`
			Currency      string  `json:"currency"`
			WorkspaceID   *string `json:"workspace_id"`
			Description   *string `json:"description"`
			CostType      *string `json:"cost_type"`
			ContextWindow *string `json:"context_window"`
			Model         *string `json:"model"`
			ServiceTier   *string `json:"service_tier"`
			TokenType     *string `json:"token_type"`
		} `json:"results"`
	} `json:"data"`
	HasMore  bool    `json:"has_more"`
	NextPage *string `json:"next_page"`
}

// minorUnits is the number of decimal places of a currency's lowest unit.
func minorUnits(cur string) int32 {
	switch cur {
	case "JPY", "KRW":
		return 0
	}
	return 2
}

func parseAnthropic(s *Source, name string, b []byte, loc *time.Location) ([]Line, error) {
	var reps []anthropicReport
	t := bytes.TrimSpace(b)
	if len(t) > 0 && t[0] == '[' {
		if err := decoder(b).Decode(&reps); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	} else {
		var r anthropicReport
		if err := decoder(b).Decode(&r); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		reps = []anthropicReport{r}
	}
	var out []Line
	var errs []error
	for pi, rep := range reps {
		for bi, bk := range rep.Data {
			start, err := time.Parse(time.RFC3339, bk.StartingAt)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: page %d bucket %d: starting_at %q: %w", name, pi, bi, bk.StartingAt, err))
				continue
			}
			for ri, r := range bk.Results {
				where := fmt.Sprintf("%s: page %d bucket %d result %d", name, pi, bi, ri)
				cur := strings.ToUpper(r.Currency)
				if cur == "" {
					cur = "USD"
				}
				minor, err := decimal.NewFromString(r.Amount)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: amount %q is not a decimal string", where, r.Amount))
					continue
				}
				l := Line{Source: where, Format: s.Format, Provider: s.Provider, Currency: cur, Start: start.UTC(),
					Amount: minor.Shift(-minorUnits(cur))}
				if r.WorkspaceID != nil {
					l.Project = *r.WorkspaceID
				}
				if r.Model != nil {
					l.Model = *r.Model
				}
				if r.TokenType != nil {
					l.Class = normaliseClass(*r.TokenType)
				}
				if r.Description != nil {
					l.Text = *r.Description
				}
				if l.Model == "" && len(s.Models) > 0 {
					_, l.Model, l.Class = s.resolve(l.Text)
				}
				l.Day = l.Start.In(loc).Format(time.DateOnly)
				out = append(out, l)
			}
		}
	}
	return out, errors.Join(errs...)
}

// tokensPerUnit reads a FOCUS PricingUnit such as "Tokens", "1K Tokens",
// "1M tokens" or "1000000 Tokens" (UnitFormat); 0 when it is not a token unit.
func tokensPerUnit(u string) int64 {
	f := strings.Fields(strings.ToLower(u))
	if len(f) == 1 && (f[0] == "tokens" || f[0] == "token") {
		return 1
	}
	if len(f) != 2 || (f[1] != "tokens" && f[1] != "token") {
		return 0
	}
	n := f[0]
	mult := int64(1)
	switch {
	case strings.HasSuffix(n, "k"):
		mult, n = 1000, strings.TrimSuffix(n, "k")
	case strings.HasSuffix(n, "m"):
		mult, n = 1_000_000, strings.TrimSuffix(n, "m")
	}
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil || v <= 0 {
		return 0
	}
	// Only powers of ten, so that price ÷ unit is exact.
	for t := v * mult; t > 1; t /= 10 {
		if t%10 != 0 {
			return 0
		}
	}
	return v * mult
}

// parseFOCUS reads a FOCUS cost and usage CSV by column name (1.0–1.3:
// ServiceProviderName or ProviderName). Only the columns used are required:
// BilledCost, BillingCurrency, ChargePeriodStart.
func parseFOCUS(s *Source, name string, b []byte, loc *time.Location) ([]Line, error) {
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))))
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(h)] = i
	}
	for _, need := range []string{"BilledCost", "BillingCurrency", "ChargePeriodStart"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%s: FOCUS column %s missing", name, need)
		}
	}
	get := func(rec []string, c string) string {
		if i, ok := col[c]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []Line
	var errs []error
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil { // a *csv.ParseError names its line; FieldPos is only valid after a good record
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			break
		}
		line, _ := cr.FieldPos(0)
		where := fmt.Sprintf("%s:%d", name, line)
		amt, err := decimal.NewFromString(get(rec, "BilledCost"))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: BilledCost %q is not a decimal", where, get(rec, "BilledCost")))
			continue
		}
		start, err := time.Parse(time.RFC3339, get(rec, "ChargePeriodStart"))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: ChargePeriodStart %q is not RFC 3339", where, get(rec, "ChargePeriodStart")))
			continue
		}
		l := Line{Source: where, Format: s.Format, Provider: s.Provider, Account: get(rec, "BillingAccountId"),
			Project: get(rec, "SubAccountId"), Amount: amt, Currency: strings.ToUpper(get(rec, "BillingCurrency")),
			Start: start.UTC(), ChargeClass: get(rec, "ChargeClass")}
		l.Text = get(rec, "SkuMeter")
		if l.Text == "" {
			l.Text = get(rec, "ChargeDescription")
		}
		prov, model, class := s.resolve(l.Text)
		if prov != "" {
			l.Provider = prov
		}
		if l.Provider == "" {
			l.Provider = strings.ToLower(firstNonEmpty(get(rec, "ServiceProviderName"), get(rec, "ProviderName")))
		}
		l.Model, l.Class = model, class
		if pc := strings.ToUpper(get(rec, "PricingCurrency")); pc != "" && pc != l.Currency {
			l.PricingCurrency = pc
			if l.PricingAmount, err = decimal.NewFromString(get(rec, "PricingCurrencyEffectiveCost")); err != nil {
				errs = append(errs, fmt.Errorf("%s: PricingCurrencyEffectiveCost %q is not a decimal (needed when PricingCurrency differs from BillingCurrency)",
					where, get(rec, "PricingCurrencyEffectiveCost")))
				continue
			}
		}
		if per := tokensPerUnit(get(rec, "PricingUnit")); per > 0 && get(rec, "PricingQuantity") != "" {
			q, err := decimal.NewFromString(get(rec, "PricingQuantity"))
			// A count beyond int64 (1e50 tokens) is not a quantity: leave it unknown.
			if tokens := q.Mul(decimal.NewFromInt(per)); err == nil && tokens.IsInteger() && !tokens.IsNegative() &&
				tokens.LessThanOrEqual(decimal.NewFromInt(math.MaxInt64)) {
				l.HasQuantity, l.Quantity = true, tokens.IntPart()
			}
			if p, err := decimal.NewFromString(firstNonEmpty(get(rec, "PricingCurrencyContractedUnitPrice"), get(rec, "ContractedUnitPrice"))); err == nil {
				l.UnitPrice = p.Div(decimal.NewFromInt(per)) // exact: per is a power of ten
			}
		}
		l.Day = l.Start.In(loc).Format(time.DateOnly)
		out = append(out, l)
	}
	return out, errors.Join(errs...)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// Span is the first and last instants of lines' buckets (zero when none).
func Span(lines []Line) (from, to time.Time) {
	for _, l := range lines {
		if from.IsZero() || l.Start.Before(from) {
			from = l.Start
		}
		if l.Start.After(to) {
			to = l.Start
		}
	}
	return from, to.AddDate(0, 0, 1)
}
