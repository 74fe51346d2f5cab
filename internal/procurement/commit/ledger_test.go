package commit

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/configerr"
	"github.com/tokenmeter/tokenmeter/internal/export"
)

const file = `
commitments:
  - {id: oa-commit, kind: commitment, provider: openai, amount: "1000", period: month, start: 2027-01-01, expiry: 2027-04-01,
     applies_to: {models: [gpt-4o]}}
  - {id: an-credit-long, kind: credit, provider: anthropic, amount: "500", start: 2027-01-01, expiry: 2027-03-01}
  - {id: an-credit-short, kind: credit, provider: anthropic, amount: "300", start: 2027-01-01, expiry: 2027-02-01}
`

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func day(s string) time.Time {
	t, _ := time.Parse(time.DateOnly, s)
	return t
}

func ledger(t *testing.T) *Ledger {
	t.Helper()
	f, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	l.ApplyCost("acme", "openai", "gpt-4o", "standard", day("2027-01-05"), "USD", d("200"))
	l.ApplyCost("acme", "openai", "gpt-4o-mini", "standard", day("2027-01-06"), "USD", d("50")) // not covered
	l.ApplyCost("acme", "openai", "gpt-4o", "standard", day("2027-02-01"), "USD", d("100"))     // February
	l.ApplyCost("acme", "anthropic", "claude-sonnet-4-5", "standard", day("2027-01-03"), "USD", d("350"))
	l.ApplyCost("acme", "anthropic", "claude-sonnet-4-5", "batch", day("2027-01-10"), "USD", d("100"))
	return l
}

func byID(ss []Status) map[string]Status {
	m := map[string]Status{}
	for _, s := range ss {
		m[s.ID] = s
	}
	return m
}

func TestCommitmentShortfallProjected(t *testing.T) {
	l := ledger(t)
	at := day("2027-01-11") // 10 of January's 31 days
	s := byID(l.Status(at))["oa-commit"]
	// 200 drawn in 10 days: 20/day, 620 projected, 380 short.
	if !s.Drawn.Equal(d("200")) || !s.BurnPerDay.Equal(d("20")) || !s.Projected.Equal(d("620")) || !s.ProjectedUnused.Equal(d("380")) {
		t.Errorf("status %+v", s)
	}
	if !s.PeriodEnd.Equal(day("2027-02-01")) {
		t.Errorf("period end %s", s.PeriodEnd)
	}
	feb := byID(l.Status(day("2027-02-02")))["oa-commit"]
	if !feb.Drawn.Equal(d("100")) || !feb.PeriodStart.Equal(day("2027-02-01")) {
		t.Errorf("february %+v", feb)
	}
	var kinds []string
	for _, a := range l.Alerts(at) {
		kinds = append(kinds, a.Kind+":"+a.CommitmentID+":"+a.Amount.String())
	}
	want := []string{"commitment_shortfall_projected:oa-commit:380", "credit_exhausted_before_expiry:an-credit-long:350"}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Errorf("alerts %v, want %v", kinds, want)
	}
}

func TestExpiringCreditsDrawnSoonestFirst(t *testing.T) {
	l := ledger(t)
	at := day("2027-01-11")
	st := byID(l.Status(at))
	// 350 on Jan 3: 300 from the credit expiring Feb 1, 50 from the other; then 100.
	short, long := st["an-credit-short"], st["an-credit-long"]
	if !short.Drawn.Equal(d("300")) || !short.Remaining.IsZero() {
		t.Errorf("short credit %+v", short)
	}
	if !long.Drawn.Equal(d("150")) || !long.Remaining.Equal(d("350")) || !long.BurnPerDay.Equal(d("15")) {
		t.Errorf("long credit %+v", long)
	}
	// 350 left at 15/day lasts 23.333333 days: runs out Feb 3, before its Mar 1 expiry.
	if long.ProjectedExhausted == nil || long.ProjectedExhausted.Format(time.DateOnly) != "2027-02-03" {
		t.Errorf("exhausted %v", long.ProjectedExhausted)
	}
	// Nothing more used: on Feb 15 (14 days before expiry) 150 drawn over 45
	// of 59 days projects 196.666666666667; 303.333333333333 expires unused.
	late := l.Alerts(day("2027-02-15"))
	if len(late) != 2 || late[1].Kind != AlertCreditExpiring || late[1].CommitmentID != "an-credit-long" || !late[1].Amount.Equal(d("303.333333333333")) {
		t.Errorf("alerts %+v", late)
	}
}

func TestAdvicePrefersTheModelWhoseCommitmentWouldGoUnused(t *testing.T) {
	l := ledger(t)
	at := day("2027-01-11")
	a := l.Advise("acme", "openai", "gpt-4o-mini", at)
	if a == nil || a.CommitmentID != "oa-commit" || a.Model != "gpt-4o" || !a.ProjectedUnused.Equal(d("380")) {
		t.Fatalf("advice %+v", a)
	}
	if a := l.Advise("acme", "openai", "gpt-4o", at); a != nil {
		t.Errorf("a covered request got advice %+v", a)
	}
}

func TestFOCUSContractCommitmentDataset(t *testing.T) {
	f, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	rows := f.FOCUS()
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 3 monthly periods + 2 credits", len(rows))
	}
	if rows[1].ContractCommitmentID != "oa-commit/2027-02-01" || !rows[1].ContractCommitmentPeriodEnd.Equal(day("2027-03-01")) ||
		rows[1].ContractCommitmentCategory != "Spend" || !rows[1].ContractPeriodEnd.Equal(day("2027-04-01")) {
		t.Errorf("row 1 %+v", rows[1])
	}
	var buf bytes.Buffer
	if _, err := export.WriteTable(f.FOCUSTable(), export.FormatCSV, &buf); err != nil {
		t.Fatal(err)
	}
	head := strings.SplitN(buf.String(), "\n", 2)[0]
	if head != strings.Join(ContractCommitmentColumns, ",") {
		t.Errorf("header %s", head)
	}
}

func TestValidatePaths(t *testing.T) {
	_, err := Parse([]byte(`commitments:
  - {id: a, kind: pledge, amount: "0", start: 2027-02-01, expiry: 2027-01-01}
  - {id: a, kind: credit, provider: x, amount: "5", period: month, start: 2027-01-01, expiry: soon}
`))
	want := []string{"commitments[0].kind", "commitments[0].provider", "commitments[0].amount", "commitments[0].expiry",
		"commitments[1].id", "commitments[1].period", "commitments[1].expiry"}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w+":") {
			t.Errorf("missing %s in %v", w, err)
		}
	}
	if n := len(configerr.Leaves(err)); n != len(want) {
		t.Errorf("%d problems, want %d: %v", n, len(want), err)
	}
}
