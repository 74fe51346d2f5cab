package pricing

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/confload"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gopkg.in/yaml.v3"

	"github.com/tokenmeter/tokenmeter/internal/money"
)

// FXFile is the YAML form of dated FX rates. The CSV form has the header
// `date,base,quote,rate` and the same meaning per row.
type FXFile struct {
	Rates []FXRate `yaml:"rates"`
}

// FXRate says 1 Base = Rate Quote from 00:00 UTC on Date until the next
// rate of the same pair. Rates are used only in the direction given (no
// inversion: 1/rate is not exact).
type FXRate struct {
	Date  string `yaml:"date"` // YYYY-MM-DD
	Base  string `yaml:"base"` // e.g. USD
	Quote string `yaml:"quote"`
	Rate  Amount `yaml:"rate"`
	// Source says where the rate came from (optional).
	Source string `yaml:"source,omitempty"`
}

// ReadFX reads a YAML or CSV rates file (by extension).
func ReadFX(path string) (*FXFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		return ParseFXCSV(bytes.NewReader(b), path)
	}
	var f FXFile
	if err := confload.Strict(b, &f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// ParseFXCSV reads `date,base,quote,rate[,source]` rows with a header line.
func ParseFXCSV(r io.Reader, name string) (*FXFile, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(rows) == 0 {
		return &FXFile{}, nil
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, need := range []string{"date", "base", "quote", "rate"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%s: header must name date,base,quote,rate; missing %s", name, need)
		}
	}
	var f FXFile
	var errs []error
	for i, row := range rows[1:] {
		get := func(k string) string {
			if j, ok := col[k]; ok && j < len(row) {
				return strings.TrimSpace(row[j])
			}
			return ""
		}
		a, err := A(get("rate"))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: line %d: rate: %w", name, i+2, err))
			continue
		}
		f.Rates = append(f.Rates, FXRate{Date: get("date"), Base: get("base"), Quote: get("quote"), Rate: a, Source: get("source")})
	}
	return &f, errors.Join(errs...)
}

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

type pair struct{ base, quote string }

// fxPoint is one resolved rate.
type fxPoint struct {
	day  int64 // days since 1970-01-01 (UTC)
	date string
	rate decimal.Decimal
	// stored is rate rounded to money.Scale, what the priced record carries
	// (billed costs are computed with the exact rate).
	stored money.Amount
	// coef/scale: rate == coef × 10^-scale, for the fixed-point path.
	coef  int64
	scale int32
	fixed bool
}

type fxTable map[pair][]fxPoint

// buildFX validates rates and orders them per pair by date.
func buildFX(f *FXFile) (fxTable, error) {
	t := fxTable{}
	var errs []error
	seen := map[string]bool{}
	for i, r := range f.Rates {
		at := fmt.Sprintf("rates[%d]", i)
		d, err := time.Parse(time.DateOnly, r.Date)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.date: %q is not YYYY-MM-DD", at, r.Date))
			continue
		}
		if !currencyCode.MatchString(r.Base) || !currencyCode.MatchString(r.Quote) {
			errs = append(errs, fmt.Errorf("%s: base %q and quote %q must be ISO 4217 codes", at, r.Base, r.Quote))
			continue
		}
		if !r.Rate.Set || !r.Rate.D.IsPositive() {
			errs = append(errs, fmt.Errorf("%s.rate: must be a positive decimal", at))
			continue
		}
		key := r.Base + "/" + r.Quote + "@" + r.Date
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s: %s is given twice", at, key))
			continue
		}
		seen[key] = true
		p := fxPoint{day: d.Unix() / 86400, date: r.Date, rate: r.Rate.D}
		var fits bool
		if p.stored, fits = money.FromDecimal(r.Rate.D); !fits {
			errs = append(errs, fmt.Errorf("%s.rate: %s is beyond Decimal(38, 12)", at, r.Rate.D))
			continue
		}
		if p.rate.Exponent() <= 0 && p.rate.Coefficient().IsInt64() {
			p.coef, p.scale, p.fixed = p.rate.Coefficient().Int64(), -p.rate.Exponent(), true
		}
		k := pair{r.Base, r.Quote}
		t[k] = append(t[k], p)
	}
	for _, pts := range t {
		sort.Slice(pts, func(i, j int) bool { return pts[i].day < pts[j].day })
	}
	return t, errors.Join(errs...)
}

// lookup returns the latest rate dated on or before day.
func (t fxTable) lookup(base, quote string, day int64) (*fxPoint, bool) {
	pts := t[pair{base, quote}]
	i := sort.Search(len(pts), func(i int) bool { return pts[i].day > day })
	if i == 0 {
		return nil, false
	}
	return &pts[i-1], true
}

// WriteFXYAML writes rates as the YAML form, sorted by pair and date.
func WriteFXYAML(w io.Writer, f *FXFile) error {
	sort.SliceStable(f.Rates, func(i, j int) bool {
		a, b := f.Rates[i], f.Rates[j]
		if a.Base+a.Quote != b.Base+b.Quote {
			return a.Base+a.Quote < b.Base+b.Quote
		}
		return a.Date < b.Date
	})
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return err
	}
	return enc.Close()
}

// ValidateFX reports every problem in a rates file (bad dates, codes,
// non-positive rates, duplicates).
func ValidateFX(f *FXFile) error {
	_, err := buildFX(f)
	return err
}

// CheckFXCoverage warns, per currency pair, when the rates file ends before
// today (UTC): events after its last date are converted at that date's rate,
// and flagged fx_stale once they are more than fx_max_age past it.
func CheckFXCoverage(f *FXFile, cfg Config, now time.Time) []Problem {
	last := map[string]string{}
	for _, r := range f.Rates {
		k := r.Base + "/" + r.Quote
		if _, err := time.Parse(time.DateOnly, r.Date); err == nil && r.Date > last[k] {
			last[k] = r.Date
		}
	}
	today := now.UTC().Format(time.DateOnly)
	keys := make([]string, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ps []Problem
	for _, k := range keys {
		d := last[k]
		if d >= today {
			continue
		}
		lastDay, _ := time.Parse(time.DateOnly, d)
		staleFrom := lastDay.AddDate(0, 0, int(cfg.fxMaxAgeDays())+1).Format(time.DateOnly)
		ps = append(ps, Problem{Severity: SeverityWarning, Where: "fx " + k,
			Message: fmt.Sprintf("the last rate is dated %s, before today %s: later events use it, and from %s they are flagged fx_stale (pricing.fx_max_age); add current rates (tokenmeter prices import-fx)", d, today, staleFrom)})
	}
	return ps
}
