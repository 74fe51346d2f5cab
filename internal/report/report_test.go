package report

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func dv(s string) Value { return V(decimal.RequireFromString(s)) }

// fixture: acme in Q4 2026 with usage Aug-Nov, a forecast for Oct-Dec only,
// an envelope all year, and no usage in December yet.
func fixture() *Data {
	d := &Data{Tenant: "acme", Currency: "HKD", TimeZone: "Asia/Hong_Kong", Now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	d.Period, _ = ParsePeriod("2026-Q4")
	for m := 1; m <= 12; m++ {
		d.Months[m] = MonthFacts{Month: m, Envelope: dv("100000"), Closed: m <= 11}
	}
	spend := map[int]string{8: "61000.25", 9: "72000.50", 10: "91234.56", 11: "88765.44"}
	for m, s := range spend {
		d.Months[m].HasUsage, d.Months[m].Spend, d.Months[m].Calls = true, dv(s), 1000
	}
	d.Months[10].Forecast, d.Months[11].Forecast, d.Months[12].Forecast = dv("80000"), dv("80000"), dv("80000")
	w := WorkflowFacts{Name: "support-copilot"}
	w.Months[9] = WorkflowMonth{Spend: dv("3600"), Outcomes: dv("9000"), OutcomeValue: dv("108000"), CostPerOutcome: dv("0.40")}
	w.Months[10] = WorkflowMonth{Spend: dv("4100"), Outcomes: dv("10250"), OutcomeValue: dv("123000"), CostPerOutcome: dv("0.40")}
	w.Months[11] = WorkflowMonth{Spend: dv("3900"), Outcomes: dv("10000"), OutcomeValue: dv("120000"), CostPerOutcome: dv("0.39")}
	l := WorkflowFacts{Name: "legal-research"}
	l.Months[10] = WorkflowMonth{Spend: dv("87134.56"), Outcomes: dv("970"), OutcomeValue: dv("19400"), CostPerOutcome: dv("89.829")}
	l.Months[11] = WorkflowMonth{Spend: dv("84865.44"), Outcomes: dv("940"), OutcomeValue: dv("18800"), CostPerOutcome: dv("90.282")}
	d.Workflows = []WorkflowFacts{w, l}
	d.Optimisation = []QuarterRate{{Workflow: "support-copilot", Quarter: "2026-Q4", CostPerOutcome: dv("0.3960"), Previous: dv("0.40"), Change: dv("-1.0")}}
	d.Alerts = []AlertFacts{{Time: time.Date(2026, 11, 20, 2, 30, 0, 0, time.UTC), BudgetID: "legal-monthly", Kind: "threshold_80", Scope: "workflow legal-research", Detail: "80% of HKD 90,000.00"}}
	d.Quality = QualityFacts{Events: 4000, DLQ: []ReasonCount{{"unknown_model", 5}, {"invalid_usage", 2}}, Unattributed: []Value{dv("1.5"), dv("0.8"), {}}}
	d.Savings = []SavingsFacts{{Month: 10, Cache: dv("1234.5")}, {Month: 11, Cache: dv("1300")}}
	return d
}

func render(t *testing.T, d *Data) (string, []byte) {
	t.Helper()
	p := Build(d, nil)
	var h, pdf bytes.Buffer
	if err := WriteHTML(&h, p); err != nil {
		t.Fatal(err)
	}
	if err := WritePDF(&pdf, p); err != nil {
		t.Fatal(err)
	}
	return h.String(), pdf.Bytes()
}

var tagRe = regexp.MustCompile(`<[^>]*>`)

func TestHTMLHeadlineNumbers(t *testing.T) {
	h, pdf := render(t, fixture())
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatal("not a PDF")
	}
	txt := tagRe.ReplaceAllString(h, " ")
	for _, want := range []string{
		// Q4 = 91,234.56 + 88,765.44 (Dec has no usage yet)
		"HKD 180,000.00",
		// forecast Oct-Dec 3 × 80,000; compared like with like, Oct-Nov:
		// 180,000 / 160,000 = 112.5%
		"HKD 240,000.00", "ran at 112.5% of the approved forecast",
		// envelope Q4 3 × 100,000; Oct-Nov 180,000 / 200,000 = 90.0%
		"HKD 300,000.00", "90.0% of the envelope",
		// variance Oct-Nov: 180,000 - 160,000
		"HKD 20,000.00 over forecast in the closed months",
		// year to date Aug-Nov
		"HKD 313,000.75",
		// legal: (87,134.56 + 84,865.44) / (970 + 940) = 90.05 per outcome; net 38,200 - 172,000
		"legal-research", "90.05", "-133,800.00",
		"Lowest net value: legal-research",
		"Asia/Hong_Kong", "2026-11-20 10:30", // the alert at 02:30 UTC in Hong Kong
		"unknown_model",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("HTML misses %q", want)
		}
	}
	if strings.Contains(txt, "NaN") || strings.Contains(txt, "Inf") {
		t.Error("NaN/Inf in the pack")
	}
	if strings.Contains(h, "<script") || strings.Contains(h, "http://") && !strings.Contains(h, "http://www.w3.org/") {
		t.Error("the pack loads something")
	}
}

// Months with no usage and no forecast say so: never 0.00 or NaN.
func TestMissingRendersAsMissing(t *testing.T) {
	d := fixture()
	h, _ := render(t, d)
	row := regexp.MustCompile(`2026-12</td><td class="num missing">no usage</td><td class="num">80,000.00</td>`)
	if !row.MatchString(h) {
		t.Error("December should be 'no usage' with its forecast")
	}
	if !strings.Contains(h, `2026-08</td><td class="num">61,000.25</td><td class="num missing">no forecast</td>`) {
		t.Error("August should show 'no forecast'")
	}
	// no plan: the reconciliation page says so, the projection is missing
	if !strings.Contains(h, "No plan with an envelope") || !strings.Contains(h, `<div class="value missing">no forecast</div>`) {
		t.Error("missing plan not rendered as such")
	}
	// an empty tenant: every page renders, nothing invented
	empty := &Data{Tenant: "nobody", Currency: "USD", TimeZone: "UTC", Now: d.Now, Period: d.Period}
	h, _ = render(t, empty)
	for _, want := range []string{"No usage was recorded for nobody in 2026-Q4", "No workflow recorded usage.", "No budget alerts in the period."} {
		if !strings.Contains(h, want) {
			t.Errorf("empty pack misses %q", want)
		}
	}
	if strings.Contains(tagRe.ReplaceAllString(h, " "), "0.00") {
		t.Error("empty pack shows a zero amount")
	}
}

func TestParsePeriod(t *testing.T) {
	p, err := ParsePeriod("2026-Q4")
	if err != nil || p.FirstMonth != 10 || p.LastMonth != 12 || p.Year != 2026 {
		t.Fatalf("%+v %v", p, err)
	}
	p, err = ParsePeriod("2026-02")
	if err != nil || p.FirstMonth != 2 || p.LastMonth != 2 {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := ParsePeriod("2026-Q5"); err == nil {
		t.Fatal("Q5 accepted")
	}
}

func TestMoney(t *testing.T) {
	for in, want := range map[string]string{"1234567.891": "1,234,567.89", "-0.004": "0.00", "-1234.5": "-1,234.50", "12": "12.00", "999.999": "1,000.00"} {
		if got := Money(decimal.RequireFromString(in)); got != want {
			t.Errorf("Money(%s) = %s, want %s", in, got, want)
		}
	}
}

// writeFixture writes the fixture pack for the browser test and for docs.
func writeFixture(t *testing.T, dir string) (string, string) {
	h, pdf := render(t, fixture())
	hp, pp := filepath.Join(dir, "pack.html"), filepath.Join(dir, "pack.pdf")
	if err := os.WriteFile(hp, []byte(h), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pp, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	return hp, pp
}
