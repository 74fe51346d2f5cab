// Package report builds the board pack: a list of pages (headline, the five
// CFO metrics, top movers, reconciliation, budgets, savings, data quality),
// each made from facts read from ClickHouse's documented views, rendered as
// one self-contained HTML file (charts inline as SVG) and as a PDF of the
// same pages.
//
// File map:
//
//	config.go  what to build (tenant, period, output), Validate
//	pack.go    the page model and the section registry (add a page: append to Sections)
//	data.go    the facts a pack is built from (Data), the period
//	pages.go   the standard pages
//	chart.go   charts (gonum/plot) as SVG and PNG
//	html.go    the HTML renderer
//	pdf.go     the PDF renderer (go-pdf/fpdf)
//	load.go    Data from ClickHouse
package report

import (
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Value is an exact figure that may be missing; a missing value renders as
// its reason (e.g. "no forecast"), never as 0 or NaN.
type Value struct {
	D  decimal.Decimal
	OK bool
}

// V makes a present value.
func V(d decimal.Decimal) Value { return Value{D: d, OK: true} }

// Cell is one table cell as text; Missing cells are greyed.
type Cell struct {
	Text    string
	Num     bool // right-aligned
	Missing bool
}

// Table is a titled table; Empty is shown instead when it has no rows.
type Table struct {
	Title   string
	Columns []string
	Rows    [][]Cell
	Empty   string
	Note    string
}

// Metric is a headline figure with a one-line reading.
type Metric struct {
	Label   string
	Value   string
	Missing bool
	Reading string
}

// Block is a titled part of a page: a one-line reading with a chart
// and/or a table.
type Block struct {
	Title   string
	Reading string
	Chart   *Chart
	Table   *Table
}

// Page is one page of the pack.
type Page struct {
	ID      string
	Title   string
	Lead    string // the page's one-line reading
	Metrics []Metric
	Blocks  []Block
	Notes   []string
}

// Pack is the whole board pack.
type Pack struct {
	Title     string
	Tenant    string
	Period    string
	Currency  string
	TimeZone  string
	Generated time.Time
	Sources   string // where the numbers came from
	Pages     []Page
}

// Section builds one page from the facts. A later analysis adds its page by
// appending a Section to Sections (and, if it needs new facts, a field to
// Data and a query to load.go).
type Section struct {
	ID    string
	Build func(d *Data) Page
}

// Sections are the pack's pages in order.
var Sections = []Section{
	{"headline", headlinePage},
	{"metrics", metricsPage},
	{"movers", moversPage},
	{"reconciliation", reconciliationPage},
	{"budgets", budgetsPage},
	{"savings", savingsPage},
	{"levers", leversPage},
	{"quality", qualityPage},
}

// Build makes the pack from the facts with the given sections (nil: Sections).
func Build(d *Data, sections []Section) *Pack {
	if sections == nil {
		sections = Sections
	}
	p := &Pack{
		Title:     "AI spend board pack",
		Tenant:    d.Tenant,
		Period:    d.Period.Label,
		Currency:  d.Currency,
		TimeZone:  d.TimeZone,
		Generated: d.Now,
		Sources:   d.Sources,
	}
	for _, s := range sections {
		pg := s.Build(d)
		pg.ID = s.ID
		p.Pages = append(p.Pages, pg)
	}
	return p
}

// Money formats an exact amount to cents with grouped thousands ("-1,234.50").
func Money(d decimal.Decimal) string { return groupDigits(d.StringFixed(2)) }

// MoneyV formats a value or its reason.
func MoneyV(v Value, missing string) Cell {
	if !v.OK {
		return Cell{Text: missing, Missing: true, Num: true}
	}
	return Cell{Text: Money(v.D), Num: true}
}

// Pct formats a percentage to one decimal ("-12.5%").
func Pct(d decimal.Decimal) string { return d.StringFixed(1) + "%" }

// PctV formats a value or its reason.
func PctV(v Value, missing string) Cell {
	if !v.OK {
		return Cell{Text: missing, Missing: true, Num: true}
	}
	return Cell{Text: Pct(v.D), Num: true}
}

// Count formats a whole number with grouped thousands.
func Count(d decimal.Decimal) string { return groupDigits(d.Round(0).String()) }

func text(s string) Cell { return Cell{Text: s} }

func num(s string) Cell { return Cell{Text: s, Num: true} }

func groupDigits(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if hasFrac {
		out += "." + frac
	}
	if neg && strings.Trim(out, "0.,") != "" {
		out = "-" + out
	}
	return out
}
