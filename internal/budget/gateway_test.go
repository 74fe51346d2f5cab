package budget

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/role"
)

// TestPerBudgetNotReadyPolicyAndFailOpenCount: while not ready, one
// fail-closed enforce budget denies; otherwise each fail-open enforce budget
// counts the blind admission, and one fail_open alert is raised per budget
// and episode.
func TestPerBudgetNotReadyPolicyAndFailOpenCount(t *testing.T) {
	cfg := Config{NotReadyPolicy: PolicyFailOpen, Budgets: []BudgetConfig{
		{ID: "legal-closed", Tenant: "acme", Amount: "100", Mode: ModeEnforce, Scope: Scope{Workflow: "legal"}, NotReadyPolicy: PolicyFailClosed},
		{ID: "mkt-open", Tenant: "acme", Amount: "100", Mode: ModeEnforce, Scope: Scope{Workflow: "mkt"}},
		{ID: "team-open", Tenant: "acme", Amount: "100", Mode: ModeEnforce, Scope: Scope{Team: "t1"}},
		{ID: "all-alert", Tenant: "acme", Amount: "100"},
	}}
	cfg.ApplyDefaults()
	clock := &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, hkt)}
	r, err := newBudget(cfg, fixedPricer{}, role.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Tenants: testTenants(t)}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	acme, _ := testTenants(t).Lookup("acme")
	one := decimal.NewFromInt(1)
	// Not ready (rebuilding).
	resp, _, _ := r.Check(acme, &CheckRequest{Workflow: "legal", Team: "t1", EstimatedCost: &one})
	if resp.Decision != DecisionDeny || resp.Policy != PolicyFailClosed {
		t.Fatalf("legal (fail-closed budget applies): %+v", resp)
	}
	for i := 0; i < 3; i++ {
		resp, _, _ = r.Check(acme, &CheckRequest{Workflow: "mkt", Team: "t1", EstimatedCost: &one})
		if resp.Decision != DecisionAllow || resp.Policy != PolicyFailOpen {
			t.Fatalf("mkt (fail-open budgets only): %+v", resp)
		}
	}
	// mkt-open and team-open each admitted 3 blind; the denied call counts nowhere.
	if n := r.FailOpenAdmissions(); n != 6 {
		t.Errorf("fail-open admissions %d, want 6", n)
	}
	raised := map[string]int64{}
	als := r.failOpenAlerts(raised)
	if len(als) != 2 || als[0].BudgetID != "mkt-open" || als[1].BudgetID != "team-open" ||
		!als[0].Threshold.Equal(decimal.NewFromInt(3)) || als[0].Kind != KindFailOpen {
		t.Fatalf("alerts: %+v", als)
	}
	if again := r.failOpenAlerts(raised); len(again) != 0 {
		t.Errorf("raised twice: %+v", again)
	}
	// Ready again: the episode closes; the next not-ready admission is a new one.
	r.ledger.ready.Store(true)
	r.failOpenAlerts(raised)
	r.ledger.ready.Store(false)
	clock.Set(clock.Now().Add(time.Minute))
	r.Check(acme, &CheckRequest{Workflow: "mkt", EstimatedCost: &one})
	if als := r.failOpenAlerts(raised); len(als) != 1 || als[0].AlertID == "" || als[0].BudgetID != "mkt-open" {
		t.Errorf("second episode: %+v", als)
	}
}

// TestSettleShrinksThenEventSettles: Settle replaces a reservation's amount
// with the exact cost; the priced event then turns it into spend once.
func TestSettleShrinksThenEventSettles(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, hkt)}
	l := newTestLedger(t, clock,
		BudgetConfig{ID: "enf", Tenant: "acme", Amount: "100", Mode: ModeEnforce},
		BudgetConfig{ID: "tok", Tenant: "acme", Amount: "100000", Unit: UnitTokens, Mode: ModeEnforce})
	acme, _ := testTenants(t).Lookup("acme")
	r := l.check(acme, &CheckRequest{Reserve: true, RequestID: "gw-1"}, estimate{cost: decimal.NewFromInt(40), tokens: 5000}, PolicyFailOpen)
	if !r.Reserved {
		t.Fatalf("%+v", r)
	}
	if !l.settle("acme", "gw-1", estimate{cost: decimal.RequireFromString("7.5"), tokens: 1100}) {
		t.Fatal("settle found no reservation")
	}
	if s := l.status(l.byID["enf"]); !s.Reserved.Equal(decimal.RequireFromString("7.5")) {
		t.Errorf("reserved after settle %s, want 7.5", s.Reserved)
	}
	if s := l.status(l.byID["tok"]); !s.Reserved.Equal(decimal.NewFromInt(1100)) {
		t.Errorf("tokens reserved after settle %s, want 1100", s.Reserved)
	}
	ev := priced("chatcmpl-1", "acme", "", clock.Now(), "7.5")
	ev.Attributes = map[string]string{AttrRequestID: "gw-1"}
	l.apply(ev)
	s := l.status(l.byID["enf"])
	if !s.Reserved.IsZero() || !s.Spent.Equal(decimal.RequireFromString("7.5")) || s.Reservations != 0 {
		t.Errorf("after the event: %+v", s)
	}
	if l.settle("acme", "gw-1", estimate{cost: one()}) {
		t.Error("settle after the event found a reservation")
	}
}

func one() decimal.Decimal { return decimal.NewFromInt(1) }
