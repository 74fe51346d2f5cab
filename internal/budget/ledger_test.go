package budget

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/contract"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/money"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

var hkt = mustLoc("Asia/Hong_Kong")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

func testTenants(t testing.TB) *tenant.Registry {
	t.Helper()
	reg, err := tenant.NewRegistry([]tenant.Config{
		{ID: "acme", ReportingCurrency: "HKD", TimeZone: "Asia/Hong_Kong", TokenSHA256: []string{tenant.HashToken("acme-token")}},
		{ID: "globex", ReportingCurrency: "USD", TimeZone: "UTC", TokenSHA256: []string{tenant.HashToken("globex-token")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// fakeClock is a settable clock safe for concurrent reads.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func newTestLedger(t testing.TB, clock *fakeClock, bcs ...BudgetConfig) *ledger {
	t.Helper()
	cfg := Config{Budgets: bcs}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := testTenants(t)
	var defs []*definition
	for _, bc := range cfg.Budgets {
		tn, ok := reg.Lookup(bc.Tenant)
		if !ok {
			t.Fatalf("tenant %s", bc.Tenant)
		}
		defs = append(defs, newDefinition(bc, tn))
	}
	l := newLedger(defs, cfg.ReservationTTL, cfg.DedupeWindow, clock.Now)
	l.ready.Store(true)
	return l
}

func priced(id, tenantID, workflow string, at time.Time, hkd string) *event.PricedUsageEvent {
	ev := &event.PricedUsageEvent{}
	ev.EventID, ev.Tenant, ev.Workflow, ev.EventTime = id, tenantID, workflow, at.UTC()
	ev.Provider, ev.Model = "openai", "gpt-4o"
	ev.InputTokens, ev.OutputTokens = 1000, 100
	ev.BillingCurrency, ev.PricingCurrency = "HKD", "USD"
	ev.BilledEffectiveCost = money.MustDecimal(decimal.RequireFromString(hkd))
	ev.EffectiveCost = money.MustDecimal(decimal.RequireFromString(hkd).Div(decimal.NewFromInt(8)))
	return ev
}

func alertIDs(as []event.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.AlertID)
	}
	return out
}

func TestPeriodOfHongKongMonthAndQuarterEdges(t *testing.T) {
	cases := []struct {
		at         time.Time
		kind, want string
	}{
		{time.Date(2026, 11, 30, 23, 59, 59, 0, hkt), PeriodMonth, "2026-11"},
		{time.Date(2026, 12, 1, 0, 0, 0, 0, hkt), PeriodMonth, "2026-12"},
		// 16:00 UTC on Nov 30 is midnight Dec 1 in Hong Kong (UTC+8).
		{time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC), PeriodMonth, "2026-12"},
		{time.Date(2026, 11, 30, 15, 59, 59, 0, time.UTC), PeriodMonth, "2026-11"},
		{time.Date(2026, 12, 31, 23, 59, 59, 0, hkt), PeriodQuarter, "2026-Q4"},
		{time.Date(2027, 1, 1, 0, 0, 0, 0, hkt), PeriodQuarter, "2027-Q1"},
		{time.Date(2026, 2, 28, 23, 59, 59, 0, hkt), PeriodMonth, "2026-02"},
	}
	for _, c := range cases {
		if got := periodOf(c.kind, c.at, hkt); got.ID != c.want {
			t.Errorf("periodOf(%s, %s) = %s, want %s", c.kind, c.at, got.ID, c.want)
		}
	}
	// November has 30 days: not a 30-day window from somewhere, the calendar month.
	p := periodOf(PeriodMonth, time.Date(2026, 11, 15, 0, 0, 0, 0, hkt), hkt)
	if !p.Start.Equal(time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC)) || p.End.Sub(p.Start) != 30*24*time.Hour {
		t.Errorf("November 2026 HKT = [%s, %s)", p.Start.UTC(), p.End.UTC())
	}
	q := periodOf(PeriodQuarter, time.Date(2026, 11, 15, 0, 0, 0, 0, hkt), hkt)
	// Q4 = Oct 31 + Nov 30 + Dec 31 = 92 days.
	if q.End.Sub(q.Start) != 92*24*time.Hour {
		t.Errorf("Q4 length %s", q.End.Sub(q.Start))
	}
}

func TestSpendAtMonthEdgeLandsInRightPeriodAndRearmsThresholds(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 30, 23, 59, 59, 500e6, hkt)}
	l := newTestLedger(t, clock, BudgetConfig{ID: "acme-all", Tenant: "acme", Amount: "100"})

	// 60 of 100 HKD at 23:59:59 on Nov 30: November crosses 50%.
	got := alertIDs(l.apply(priced("e1", "acme", "support", time.Date(2026, 11, 30, 23, 59, 59, 0, hkt), "60")))
	if fmt.Sprint(got) != "[acme-all/2026-11/threshold/50]" {
		t.Fatalf("alerts at 23:59:59 = %v", got)
	}
	if s := l.status(l.byID["acme-all"]); s.Period != "2026-11" || !s.Spent.Equal(decimal.NewFromInt(60)) {
		t.Fatalf("November status: %s spent %s", s.Period, s.Spent)
	}

	// The clock moves to December: a new period with nothing spent, nothing crossed.
	clock.Set(time.Date(2026, 12, 1, 0, 0, 0, 0, hkt))
	s := l.status(l.byID["acme-all"])
	if s.Period != "2026-12" || !s.Spent.IsZero() || len(s.Crossed) != 0 {
		t.Fatalf("new period: %s spent %s crossed %v", s.Period, s.Spent, s.Crossed)
	}
	// 60 HKD at 00:00:00 Dec 1: December's own 50% fires again (re-armed).
	got = alertIDs(l.apply(priced("e2", "acme", "support", time.Date(2026, 12, 1, 0, 0, 0, 0, hkt), "60")))
	if fmt.Sprint(got) != "[acme-all/2026-12/threshold/50]" {
		t.Fatalf("alerts at 00:00:00 = %v", got)
	}
	// November keeps its 60, December has 60: 60+60 is not 120 in either.
	b := l.byID["acme-all"]
	if nov := b.periods["2026-11"].spent; !nov.Equal(decimal.NewFromInt(60)) {
		t.Errorf("November spent %s, want 60", nov)
	}
	if dec := b.periods["2026-12"].spent; !dec.Equal(decimal.NewFromInt(60)) {
		t.Errorf("December spent %s, want 60", dec)
	}
}

func TestThresholdsFireOnceAndDuplicatesDoNotCount(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, hkt)}
	l := newTestLedger(t, clock, BudgetConfig{ID: "b", Tenant: "acme", Amount: "200",
		Thresholds: []string{"100", "50", "80", "12.5"}, Projection: ProjectionConfig{Disabled: true}})
	at := time.Date(2026, 11, 20, 11, 0, 0, 0, hkt)
	// 30 HKD = 15% of 200: crosses 12.5 only.
	if got := alertIDs(l.apply(priced("e1", "acme", "w", at, "30"))); fmt.Sprint(got) != "[b/2026-11/threshold/12.5]" {
		t.Fatalf("e1: %v", got)
	}
	// The same event again (redelivery): not counted, nothing fires.
	if got := l.apply(priced("e1", "acme", "w", at, "30")); len(got) != 0 {
		t.Fatalf("duplicate raised %v", alertIDs(got))
	}
	// +140 = 170 = 85%: one event crosses 50 and 80, in ascending order.
	if got := alertIDs(l.apply(priced("e2", "acme", "w", at, "140"))); fmt.Sprint(got) != "[b/2026-11/threshold/50 b/2026-11/threshold/80]" {
		t.Fatalf("e2: %v", got)
	}
	// +29.99 = 199.99: below 100%.
	if got := l.apply(priced("e3", "acme", "w", at, "29.99")); len(got) != 0 {
		t.Fatalf("e3: %v", alertIDs(got))
	}
	// +0.01 = 200.00 = exactly 100%: fires.
	as := l.apply(priced("e4", "acme", "w", at, "0.01"))
	if fmt.Sprint(alertIDs(as)) != "[b/2026-11/threshold/100]" {
		t.Fatalf("e4: %v", alertIDs(as))
	}
	a := as[0]
	if !a.Spend.Equal(decimal.NewFromInt(200)) || !a.Amount.Equal(decimal.NewFromInt(200)) || a.Currency != "HKD" || a.Period != "2026-11" {
		t.Errorf("alert body %+v", a)
	}
	if len(a.Top) != 2 || a.Top[0].Name != "w" || !a.Top[0].Spend.Equal(decimal.NewFromInt(200)) || a.Top[1].Name != "openai/gpt-4o" {
		t.Errorf("top %+v", a.Top)
	}
	// More spend: nothing fires again this period.
	if got := l.apply(priced("e5", "acme", "w", at, "500")); len(got) != 0 {
		t.Fatalf("e5: %v", alertIDs(got))
	}
	if s := l.status(l.byID["b"]); !s.Spent.Equal(decimal.RequireFromString("700")) || len(s.Crossed) != 4 {
		// 30 + 140 + 29.99 + 0.01 + 500 = 700
		t.Errorf("status spent %s crossed %d", s.Spent, len(s.Crossed))
	}
	if l.duplicates.Load() != 1 {
		t.Errorf("duplicates = %d", l.duplicates.Load())
	}
}

func TestScopesAndTokenBudgets(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, hkt)}
	l := newTestLedger(t, clock,
		BudgetConfig{ID: "support", Tenant: "acme", Amount: "100", Scope: Scope{Workflow: "support"}},
		BudgetConfig{ID: "legal-team", Tenant: "acme", Amount: "100", Scope: Scope{Team: "legal"}},
		BudgetConfig{ID: "tokens", Tenant: "acme", Amount: "10000", Unit: UnitTokens, Thresholds: []string{"50"}},
		BudgetConfig{ID: "globex", Tenant: "globex", Amount: "100"},
	)
	at := time.Date(2026, 11, 20, 11, 0, 0, 0, hkt)
	e1 := priced("e1", "acme", "support", at, "10")
	e2 := priced("e2", "acme", "research", at, "20")
	e2.Team = "legal"
	l.apply(e1)
	as := l.apply(e2) // tokens: 1100 + 1100 = 2200 of 10000: no alert yet
	if len(as) != 0 {
		t.Fatalf("alerts %v", alertIDs(as))
	}
	for id, want := range map[string]string{"support": "10", "legal-team": "20", "tokens": "2200", "globex": "0"} {
		if got := l.status(l.byID[id]).Spent; !got.Equal(decimal.RequireFromString(want)) {
			t.Errorf("%s spent %s, want %s", id, got, want)
		}
	}
}

func TestProjectedOverrunUsesCalendarMonthRunRate(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 20, 0, 0, 0, 0, hkt)}
	l := newTestLedger(t, clock, BudgetConfig{ID: "p", Tenant: "acme", Amount: "3000", Thresholds: []string{"90"}})
	// Day 1 (elapsed 1 day < 72h min): 500 would project 15000, but too early to trust.
	if got := l.apply(priced("e0", "acme", "w", time.Date(2026, 11, 2, 0, 0, 0, 0, hkt), "500")); len(got) != 0 {
		t.Fatalf("early: %v", alertIDs(got))
	}
	// Nov 11 00:00 HKT: 10 of 30 days elapsed. Spent 500+500 = 1000 → 1000×30/10 = 3000, not above 3000.
	if got := l.apply(priced("e1", "acme", "w", time.Date(2026, 11, 11, 0, 0, 0, 0, hkt), "500")); len(got) != 0 {
		t.Fatalf("at exactly the amount: %v", alertIDs(got))
	}
	// +0.01 at the same instant: 1000.01×3 = 3000.03 > 3000 → projected overrun.
	got := l.apply(priced("e2", "acme", "w", time.Date(2026, 11, 11, 0, 0, 0, 0, hkt), "0.01"))
	if fmt.Sprint(alertIDs(got)) != "[p/2026-11/projected_overrun/100]" {
		t.Fatalf("projection: %v", alertIDs(got))
	}
	if got := l.apply(priced("e3", "acme", "w", time.Date(2026, 11, 12, 0, 0, 0, 0, hkt), "100")); len(got) != 0 {
		t.Fatalf("projection fired twice: %v", alertIDs(got))
	}
	// Status projection at Nov 20 00:00 (19 days): 1100.01×30/19 = 1736.857…
	s := l.status(l.byID["p"])
	if s.Projected == nil || !s.Projected.Equal(decimal.RequireFromString("1736.86")) {
		t.Errorf("projected %v", s.Projected)
	}
}

func TestCheckModesAndNotReadyPolicy(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, hkt)}
	l := newTestLedger(t, clock,
		BudgetConfig{ID: "enf", Tenant: "acme", Amount: "100", Mode: ModeEnforce, Scope: Scope{Workflow: "legal"}},
		BudgetConfig{ID: "warn", Tenant: "acme", Amount: "50", Mode: ModeAlert})
	acme, _ := testTenants(t).Lookup("acme")
	l.apply(priced("e1", "acme", "legal", clock.Now().Add(-time.Hour), "45"))

	// legal: enf has 100-45 = 55 left, warn has 50-45 = 5 left.
	est := estimate{cost: decimal.NewFromInt(10)}
	r := l.check(acme, &CheckRequest{Workflow: "legal"}, est, PolicyFailOpen)
	// warn (alert mode) would deny 10 > 5, but only enforce budgets deny.
	if r.Decision != DecisionAllow || len(r.Budgets) != 2 || r.Budgets[1].Verdict != DecisionDeny || r.BudgetID != "warn" {
		t.Fatalf("alert-mode: %+v", r)
	}
	if r.Reason != "alert mode: would deny (budget warn exhausted for this estimate); allowed" {
		t.Errorf("reason %q", r.Reason)
	}
	// 56 > 55 left on enf: denied.
	r = l.check(acme, &CheckRequest{Workflow: "legal"}, estimate{cost: decimal.NewFromInt(56)}, PolicyFailOpen)
	if r.Decision != DecisionDeny || r.BudgetID != "enf" || !r.Remaining.Equal(decimal.NewFromInt(55)) {
		t.Fatalf("enforce: %+v", r)
	}
	// 55 fits exactly.
	if r = l.check(acme, &CheckRequest{Workflow: "legal"}, estimate{cost: decimal.NewFromInt(55)}, PolicyFailOpen); r.Decision != DecisionAllow {
		t.Fatalf("exact fit: %+v", r)
	}
	// Another workflow is not under enf.
	if r = l.check(acme, &CheckRequest{Workflow: "other"}, estimate{cost: decimal.NewFromInt(500)}, PolicyFailOpen); r.Decision != DecisionAllow || len(r.Budgets) != 1 {
		t.Fatalf("other workflow: %+v", r)
	}
	// Not ready: the policy decides and says so.
	l.ready.Store(false)
	r = l.check(acme, &CheckRequest{Workflow: "other"}, est, PolicyFailClosed)
	if r.Decision != DecisionDeny || r.State != "not_ready" || r.Policy != PolicyFailClosed {
		t.Fatalf("fail-closed: %+v", r)
	}
	r = l.check(acme, &CheckRequest{Workflow: "legal"}, estimate{cost: decimal.NewFromInt(500)}, PolicyFailOpen)
	if r.Decision != DecisionAllow || r.Policy != PolicyFailOpen {
		t.Fatalf("fail-open: %+v", r)
	}
}

func TestReservationsSettleReleaseAndExpire(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, hkt)}
	l := newTestLedger(t, clock, BudgetConfig{ID: "enf", Tenant: "acme", Amount: "100", Mode: ModeEnforce})
	acme, _ := testTenants(t).Lookup("acme")
	est := estimate{cost: decimal.NewFromInt(40)}
	for _, id := range []string{"r1", "r2"} {
		if r := l.check(acme, &CheckRequest{Reserve: true, RequestID: id}, est, PolicyFailOpen); !r.Reserved {
			t.Fatalf("%s not reserved: %+v", id, r)
		}
	}
	// 40+40 reserved, 20 left: a third 40 does not fit.
	if r := l.check(acme, &CheckRequest{Reserve: true, RequestID: "r3"}, est, PolicyFailOpen); r.Decision != DecisionDeny || r.Reserved {
		t.Fatalf("r3: %+v", r)
	}
	// Retrying r1 does not reserve twice.
	l.check(acme, &CheckRequest{Reserve: true, RequestID: "r1"}, estimate{cost: decimal.Zero}, PolicyFailOpen)
	b := l.byID["enf"]
	if !b.reserved.Equal(decimal.NewFromInt(80)) {
		t.Fatalf("reserved %s, want 80", b.reserved)
	}
	// r1's usage arrives costing 35: spent 35, reserved 40 (r2).
	l.apply(priced("r1", "acme", "w", clock.Now(), "35"))
	if s := l.status(b); !s.Spent.Equal(decimal.NewFromInt(35)) || !s.Reserved.Equal(decimal.NewFromInt(40)) || !s.Remaining.Equal(decimal.NewFromInt(25)) {
		t.Fatalf("after settle: spent %s reserved %s remaining %s", s.Spent, s.Reserved, s.Remaining)
	}
	// r5 is settled by a usage event with its own id that names r5 in an attribute.
	l.check(acme, &CheckRequest{Reserve: true, RequestID: "r5"}, est, PolicyFailOpen)
	e5 := priced("span-77", "acme", "w", clock.Now(), "1")
	e5.Attributes = map[string]string{AttrRequestID: "r5"}
	l.apply(e5)
	// spent 35+1 = 36, reserved: r2's 40 only.
	if s := l.status(b); !s.Spent.Equal(decimal.NewFromInt(36)) || !s.Reserved.Equal(decimal.NewFromInt(40)) {
		t.Fatalf("after attribute settle: spent %s reserved %s", s.Spent, s.Reserved)
	}
	// r2 released explicitly; releasing again finds nothing.
	if !l.release("acme", "r2") || l.release("acme", "r2") {
		t.Fatal("release")
	}
	// r4 reserved and left to expire after the TTL (5m default).
	l.check(acme, &CheckRequest{Reserve: true, RequestID: "r4"}, est, PolicyFailOpen)
	clock.Set(clock.Now().Add(5*time.Minute - time.Second))
	if n := l.expire(); n != 0 {
		t.Fatalf("expired early: %d", n)
	}
	clock.Set(clock.Now().Add(time.Second))
	if n := l.expire(); n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	if s := l.status(b); !s.Reserved.IsZero() || s.Reservations != 0 {
		t.Fatalf("reserved after expiry %s (%d)", s.Reserved, s.Reservations)
	}
	// Reserving a request whose usage is already accounted holds nothing.
	r := l.check(acme, &CheckRequest{Reserve: true, RequestID: "r1"}, est, PolicyFailOpen)
	if r.Reserved || !b.reserved.IsZero() {
		t.Fatalf("reserved an accounted request: %+v", r)
	}
}

// Many goroutines reserve and spend against one enforce budget. Admitted
// spend must stay within amount + one estimate; with the check-and-reserve
// atomic it in fact stays within the amount.
func TestConcurrentReserveAndSpendNeverOvershoots(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, hkt)}
	l := newTestLedger(t, clock, BudgetConfig{ID: "enf", Tenant: "acme", Amount: "1000", Mode: ModeEnforce},
		BudgetConfig{ID: "wf", Tenant: "acme", Amount: "5000", Mode: ModeEnforce, Scope: Scope{Workflow: "w"}})
	acme, _ := testTenants(t).Lookup("acme")
	est := estimate{cost: decimal.NewFromInt(7)}
	var admitted, seq atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				id := fmt.Sprintf("req-%d", seq.Add(1))
				r := l.check(acme, &CheckRequest{Workflow: "w", Reserve: true, RequestID: id}, est, PolicyFailOpen)
				if r.Decision == DecisionDeny {
					return
				}
				admitted.Add(1)
				// The call happens; its usage (exactly the estimate) is accounted.
				l.apply(priced(id, "acme", "w", clock.Now(), "7"))
			}
		}()
	}
	wg.Wait()
	spent := l.status(l.byID["enf"]).Spent
	// floor(1000/7) = 142 calls fit: 142×7 = 994; a 143rd would make 1001.
	if admitted.Load() != 142 || !spent.Equal(decimal.NewFromInt(994)) {
		t.Fatalf("admitted %d, spent %s; want 142 and 994", admitted.Load(), spent)
	}
	if spent.GreaterThan(decimal.NewFromInt(1000 + 7)) {
		t.Fatalf("overshoot: %s", spent)
	}
	if r := l.byID["enf"].reserved; !r.IsZero() {
		t.Fatalf("reservations left: %s", r)
	}
}

func TestDedupeWindowBoundsRememberedEventIDs(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, hkt)}
	l := newTestLedger(t, clock, BudgetConfig{ID: "b", Tenant: "acme", Amount: "100"})
	l.apply(priced("e1", "acme", "w", clock.Now(), "10"))
	clock.Set(clock.Now().Add(59 * time.Minute))
	l.expire()
	// Within the 1h default window: the repeat is ignored.
	l.apply(priced("e1", "acme", "w", clock.Now().Add(-59*time.Minute), "10"))
	if s := l.status(l.byID["b"]); !s.Spent.Equal(decimal.NewFromInt(10)) {
		t.Fatalf("spent %s, want 10", s.Spent)
	}
	clock.Set(clock.Now().Add(2 * time.Minute))
	l.expire()
	l.seenMu.Lock()
	n := len(l.seen)
	l.seenMu.Unlock()
	if n != 0 {
		t.Fatalf("%d event ids remembered past the window", n)
	}
}

// The budget role reads every field the ledger uses from the priced.v1
// contract, and still reads JSON records written before it.
func TestDecodePricedKeepsWhatBudgetsUse(t *testing.T) {
	in := priced("e1", "acme", "legal", time.Date(2026, 11, 20, 11, 0, 0, 0, hkt), "12.345678901234")
	in.Team, in.UserID, in.Attributes = "legal", "u-7", map[string]string{AttrRequestID: "r1"}
	var enc contract.Encoder
	bin, err := enc.AppendPriced(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range [][]byte{bin, legacy} {
		var got event.PricedUsageEvent
		if err := decodePriced(raw, &got); err != nil {
			t.Fatal(err)
		}
		checkDecoded(t, in, &got)
	}
	var got event.PricedUsageEvent
	if decodePriced([]byte(`{"tenant":"acme"}`), &got) == nil {
		t.Fatal("a record without event_id decoded")
	}
}

func checkDecoded(t *testing.T, in, got *event.PricedUsageEvent) {
	t.Helper()
	if got.EventID != "e1" || got.Tenant != "acme" || got.Workflow != "legal" || got.Team != "legal" || got.UserID != "u-7" ||
		!got.EventTime.Equal(in.EventTime) || got.Provider != "openai" || got.Model != "gpt-4o" ||
		got.InputTokens != 1000 || got.OutputTokens != 100 || got.BillingCurrency != "HKD" || got.PricingCurrency != "USD" ||
		got.BilledEffectiveCost.String() != "12.345678901234" || got.EffectiveCost != in.EffectiveCost ||
		got.Attributes[AttrRequestID] != "r1" {
		t.Fatalf("decoded %+v", got)
	}
}

func TestConfigValidateReportsEveryProblemWithItsPath(t *testing.T) {
	c := Config{NotReadyPolicy: "maybe", Budgets: []BudgetConfig{
		{ID: "ok", Tenant: "acme", Amount: "10"},
		{ID: "ok", Tenant: "nobody", Amount: "-1", Period: "week", Mode: "block", Unit: "tokens",
			Thresholds: []string{"50", "50.0", "x"}, Webhooks: []WebhookConfig{{URL: "ftp://h", Format: "teams"}}},
	}}
	c.ApplyDefaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{
		`not_ready_policy: "maybe"`, `budgets[1].id: "ok" is declared twice`, `budgets[1].period: "week"`,
		`budgets[1].amount: must be > 0`, `budgets[1].thresholds[1]: 50 is listed twice`,
		`budgets[1].thresholds[2]: "x"`, `budgets[1].mode: "block"`, `budgets[1].webhooks[0].url: "ftp://h"`,
		`budgets[1].webhooks[0].format: "teams"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	reg := testTenants(t)
	terr := c.CheckTenants(func(id string) bool { _, ok := reg.Lookup(id); return ok })
	if terr == nil || terr.Error() != `budgets[1].tenant: "nobody" is not a declared tenant` {
		t.Errorf("tenants: %v", terr)
	}
}
