package offers

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/configerr"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/procurement"
)

func prices(t *testing.T) Prices {
	t.Helper()
	c, err := pricing.ReadCatalogue("testdata/catalogue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return Prices{Catalogues: []*pricing.CatalogueFile{c}, Names: []string{"catalogue.yaml"}}
}

// usage of m1 on the standard tier: in M input tokens and out M output tokens
// (list: in×2.00 + out×8.00).
func m1(period string, in, out int64) procurement.Usage {
	return procurement.Usage{Period: period, Tenant: "acme", Provider: "openai", Model: "m1", Tier: "standard",
		Requests: 1000, InputTokens: in * 1_000_000, OutputTokens: out * 1_000_000}
}

func dec(t *testing.T, s string) decimal.Decimal {
	t.Helper()
	return decimal.RequireFromString(s)
}

func eq(t *testing.T, what string, got decimal.Decimal, want string) {
	t.Helper()
	if !got.Equal(decimal.RequireFromString(want)) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

func sim(t *testing.T, yaml string) *Simulator {
	t.Helper()
	f, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	s, err := New(f, prices(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const head = "tenant: acme\nprovider: openai\nwindow: {from: 2027-01, to: 2027-03}\nterm: {from: 2027-01, to: 2027-03}\n"

var q1 = []string{"2027-01", "2027-02", "2027-03"}

// 280, 140, 280 list per month; at 10 % off: 252, 126, 252.
var q1Usage = []procurement.Usage{m1("2027-01", 100, 10), m1("2027-02", 50, 5), m1("2027-03", 100, 10)}

func TestCommitmentShortfall(t *testing.T) {
	cases := []struct {
		name, commitment      string
		cost, shortfall, prem string
	}{
		// 300/month, pay: short 48 + 174 + 48 = 270; cost 630 + 270 = 900.
		{"pay monthly", "{amount: '300'}", "900", "270", "0"},
		// carry forward at 200: m1 252 covers it; m2 short 74 rolls over; m3 due 274, spend 252, short 22 paid.
		{"carry forward", "{amount: '200', shortfall: carry_forward}", "652", "22", "0"},
		// the same at 300: the shortfall keeps rolling (48, then 48+174) and is paid at the end: 900−630.
		{"carry forward never caught up", "{amount: '300', shortfall: carry_forward}", "900", "270", "0"},
		// waive: spend only.
		{"waive", "{amount: '300', shortfall: waive}", "630", "0", "0"},
		// quarterly 700: spend 630, short 70.
		{"quarter", "{amount: '700', period: quarter}", "700", "70", "0"},
		// 200/month at 110 % overage: m1 +52×0.1=5.2, m2 short 74, m3 +5.2 → 252+5.2+200+252+5.2.
		{"overage premium", "{amount: '200', overage_percent: '110'}", "714.4", "74", "10.4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := sim(t, head+"offers:\n  - id: o\n    discount_percent: '10'\n    commitment: "+c.commitment+"\n")
			r, err := s.Offer("o", q1, q1Usage, 0)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "list", r.List, "700")
			eq(t, "rated", r.Rated, "630")
			eq(t, "cost", r.Cost, c.cost)
			eq(t, "shortfall", r.ShortfallPaid, c.shortfall)
			eq(t, "premium", r.OveragePremium, c.prem)
			eq(t, "unused", r.Unused(), c.shortfall)
		})
	}
}

func TestTieredMarginalVersusWholeVolume(t *testing.T) {
	tiers := func(basis string) *Tiered {
		mk := func(f, p string) Tier { a, _ := pricing.A(f); b, _ := pricing.A(p); return Tier{From: a, Percent: b} }
		return &Tiered{Basis: basis, Tiers: []Tier{mk("0", "0"), mk("100", "5"), mk("200", "10")}}
	}
	cases := []struct{ spend, marginal, whole string }{
		{"50", "0", "0"},
		{"150", "2.5", "7.5"},   // (150−100)×5 %; 150×5 %
		{"200", "5", "20"},      // a spend exactly at a tier start reaches it
		{"252", "10.2", "25.2"}, // 100×5 % + 52×10 %; 252×10 %
	}
	for _, c := range cases {
		eq(t, "marginal "+c.spend, TierDiscount(tiers("marginal"), dec(t, c.spend)), c.marginal)
		eq(t, "whole "+c.spend, TierDiscount(tiers("whole_volume"), dec(t, c.spend)), c.whole)
	}
	// Through the simulator: months 280, 140, 280 at list.
	tier := "    tiered_discount: {basis: %s, tiers: [{from: '0', percent: '0'}, {from: '100', percent: '5'}, {from: '200', percent: '10'}]}\n"
	for basis, want := range map[string]string{
		"marginal":     "672", // 280 → 100×5 % + 80×10 % = 13, 140 → 2: 700 − 13 − 2 − 13
		"whole_volume": "637", // 280 → 28, 140 → 7: 700 − 28 − 7 − 28
	} {
		s := sim(t, head+"offers:\n  - id: o\n"+strings.Replace(tier, "%s", basis, 1))
		r, err := s.Offer("o", q1, q1Usage, 0)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, basis+" cost", r.Cost, want)
	}
}

func TestExpiringCredits(t *testing.T) {
	// 500 of credit bought for 450 in month 1, usable months 1-2: 280 + 140
	// used, 80 expires. 300 bought in month 3 for 12 months: 280 used, 20 left.
	s := sim(t, head+`offers:
  - id: o
    credits:
      - {amount: '500', price: '450', month: 1, valid_months: 2}
      - {amount: '300', month: 3, valid_months: 12}
`)
	r, err := s.Offer("o", q1, q1Usage, 0)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "bought", r.CreditsBought, "750")
	eq(t, "used", r.CreditsUsed, "700")
	eq(t, "expired", r.CreditsExpired, "80")
	eq(t, "left", r.CreditsLeft, "20")
	eq(t, "cost", r.Cost, "750") // 750 paid upfront, nothing else
	eq(t, "unused", r.Unused(), "80")

	// Two credits valid together: the one expiring first is drawn first.
	s = sim(t, head+`offers:
  - id: o
    credits:
      - {amount: '1000', valid_months: 3}
      - {amount: '300', valid_months: 1}
`)
	r, err = s.Offer("o", q1, q1Usage, 0)
	if err != nil {
		t.Fatal(err)
	}
	// month 1: 280 from the 1-month credit (20 expires); months 2-3 from the
	// other, 420 used, and its 580 expires with month 3, its last month.
	eq(t, "expired", r.CreditsExpired, "600")
	eq(t, "used", r.CreditsUsed, "700")
	eq(t, "left", r.CreditsLeft, "0")
	eq(t, "cost", r.Cost, "1300")
}

func TestShiftAndProvisioned(t *testing.T) {
	jan := []string{"2027-01"}
	u := []procurement.Usage{m1("2027-01", 100, 10)}
	// 30 % to batch: 70M×2 + 30M×1 + 7M×8 + 3M×4 = 140+30+56+12.
	s := sim(t, head+"offers:\n  - id: o\n    shifts: [{model: m1, to: batch, percent: '30'}]\n")
	r, err := s.Offer("o", jan, u, 0)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "shift cost", r.Cost, "238")
	eq(t, "shift list", r.List, "280")

	// One unit at 0.10/hour serving 50 000 tokens/hour; January = 744 h:
	// fee 74.40, capacity 37 200 000 of 110 000 000 tokens. Covered input
	// floor(100M×37.2/110) = 33 818 181, output floor(10M×37.2/110) = 3 381 818.
	// On demand: 66 181 819×2/M + 6 618 182×8/M = 132.363638 + 52.945456.
	s = sim(t, head+"offers:\n  - id: o\n    provisioned: [{model: m1, units: 1, price_per_unit_hour: '0.10', tokens_per_unit_hour: 50000}]\n")
	r, err = s.Offer("o", jan, u, 0)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "fees", r.ProvisionedFees, "74.4")
	eq(t, "rated", r.Rated, "185.309094")
	eq(t, "cost", r.Cost, "259.709094")
}

func TestContractedRatesAndLongContext(t *testing.T) {
	jan := []string{"2027-01"}
	long := m1("2027-01", 100, 10)
	long.LongContext = true // billed at 4.00/12.00: 400 + 120
	alias := m1("2027-01", 1, 1)
	alias.Model = "m1-latest" // 2 + 8 at list
	u := []procurement.Usage{long, alias}
	s := sim(t, head+"offers:\n  - id: o\n    prices: {m1: {standard: {input: '1.50'}}}\n")
	r, err := s.Offer("o", jan, u, 0)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "list", r.List, "530")
	// The contracted standard input price does not cover the long-context
	// tier (a contract applies where it has terms): 520 + 1.50 + 8.
	eq(t, "cost", r.Cost, "529.5")
}

func TestCompareWinnerCounterBreakEvenRisk(t *testing.T) {
	s := sim(t, `tenant: acme
provider: openai
window: {from: 2027-01, to: 2027-01}
term: {from: 2027-02, to: 2027-02}
offers:
  - id: a
    discount_percent: '10'
  - id: b
    discount_percent: '5'
  - id: c
    discount_percent: '10'
    commitment: {amount: '200'}
`)
	other := procurement.Usage{Period: "2027-01", Tenant: "other", Provider: "openai", Model: "m1", Tier: "standard", InputTokens: 1_000_000_000}
	sh, err := s.Compare(context.Background(), []procurement.Usage{m1("2027-01", 100, 10), other}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sh.Rows) != 4 {
		t.Fatalf("rows = %d, want actual + low/expected/high", len(sh.Rows))
	}
	act := sh.Rows[0]
	eq(t, "list", act.Results[BaselineList].Cost, "280") // the other tenant is not replayed
	eq(t, "current", act.Results[BaselineCurrent].Cost, "280")
	eq(t, "a", act.Results["a"].Cost, "252")
	eq(t, "b", act.Results["b"].Cost, "266")
	eq(t, "c", act.Results["c"].Cost, "252")
	if act.Winner != "a" || act.Second != "c" {
		t.Fatalf("winner %s second %s, want a then c (ties keep file order)", act.Winner, act.Second)
	}
	if act.CounterBP != 0 {
		t.Errorf("c already ties a: counter %d bp, want 0", act.CounterBP)
	}
	low := sh.Rows[1] // 50 %: a 126, b 133, c 200 (short 74)
	if low.Scenario != "low" || low.Winner != "a" || low.Second != "b" {
		t.Fatalf("low: %+v", low)
	}
	// b needs 133×(1−x) ≤ 126 → x ≥ 7/133 = 526.3 bp → 527.
	if low.CounterBP != 527 {
		t.Errorf("low counter = %d bp, want 527", low.CounterBP)
	}
	for _, rk := range sh.Risks {
		if rk.Offer != "c" {
			continue
		}
		// unused across low/expected/high: 74, 0, 0 → P10 0, P50 0, P90 74.
		eq(t, "c unused p10", rk.UnusedP10, "0")
		eq(t, "c unused p50", rk.UnusedP50, "0")
		eq(t, "c unused p90", rk.UnusedP90, "74")
		eq(t, "c cost p90", rk.CostP90, "378") // high: 150 % → 378
		// max(200, 2.52p) ≤ 2.80p ⇔ p ≥ 71.43 → 72 % (list 201.60).
		if rk.BreakEvenPercent != 72 {
			t.Errorf("c break-even = %d %%, want 72", rk.BreakEvenPercent)
		}
		eq(t, "c break-even list", rk.BreakEvenList, "201.6")
	}
	var tab, csv bytes.Buffer
	if err := sh.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	if err := sh.WriteCSV(&csv); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tab.String(), "b needs 5.27% more off its rates") || !strings.Contains(tab.String(), "not a forecast") {
		t.Errorf("table:\n%s", tab.String())
	}
	if n := strings.Count(csv.String(), "\n"); n != 1+4*5 {
		t.Errorf("csv lines = %d, want header + 4 scenarios × 5 columns", n)
	}
}

func TestValidateReportsEveryPath(t *testing.T) {
	_, err := Parse([]byte(`provider: openai
window: {from: 2027-13, to: 2027-01}
term: {from: 2027-01, to: 2027-01}
offers:
  - id: list
    discount_percent: '120'
    tiered_discount: {basis: steps, tiers: [{from: '10', percent: '5'}]}
    commitment: {amount: '0', period: week, shortfall: forgive}
    credits: [{amount: '5', valid_months: 0}]
    shifts: [{model: m1, to: standard, percent: '33.333'}]
    provisioned: [{model: m1, units: 0, price_per_unit_hour: '1', tokens_per_unit_hour: 0}]
`))
	if err == nil {
		t.Fatal("invalid file accepted")
	}
	want := []string{"tenant: required", "window: ", "offers[0].id: \"list\" is reserved", "offers[0].discount_percent",
		"offers[0].tiered_discount.basis", "offers[0].tiered_discount.tiers[0].from: the first tier must start at 0",
		"offers[0].commitment.amount", "offers[0].commitment.period", "offers[0].commitment.shortfall",
		"offers[0].credits[0].valid_months", "offers[0].shifts[0].to", "offers[0].shifts[0].percent",
		"offers[0].provisioned[0].units", "offers[0].provisioned[0].tokens_per_unit_hour"}
	got := configerr.Leaves(err)
	text := err.Error()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in:\n%s", w, text)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(got), len(want), text)
	}
}
