package budget

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/contract"
	"github.com/tokenmeter/tokenmeter/internal/event"
)

// BenchmarkLedgerCheckReserve is the decision itself: lock two budgets,
// decide, reserve (unique request ids).
func BenchmarkLedgerCheckReserve(b *testing.B) {
	clock := &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, hkt)}
	l := newTestLedger(b, clock, BudgetConfig{ID: "all", Tenant: "acme", Amount: "1000000000"},
		BudgetConfig{ID: "wf", Tenant: "acme", Amount: "1000000000", Mode: ModeEnforce, Scope: Scope{Workflow: "w"}})
	acme, _ := testTenants(b).Lookup("acme")
	est := estimate{cost: decimal.RequireFromString("0.35")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.check(acme, &CheckRequest{Workflow: "w", Reserve: true, RequestID: fmt.Sprint(i)}, est, PolicyFailOpen)
	}
}

// BenchmarkHandleCheck is the whole HTTP handler (auth, JSON in and out)
// without the network.
func BenchmarkHandleCheck(b *testing.B) {
	r, _ := apiServer(b)
	body := []byte(`{"workflow":"legal","team":"legal","estimated_cost":"0.35"}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/budget/check", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer acme-token")
		w := httptest.NewRecorder()
		r.handleCheck(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}

// BenchmarkAccountPricedEvent is the accounting path per priced record:
// decode the JSON and apply it to four budgets (tenant, workflow, team, tokens).
func BenchmarkAccountPricedEvent(b *testing.B) {
	clock := &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, hkt)}
	l := newTestLedger(b, clock, BudgetConfig{ID: "all", Tenant: "acme", Amount: "1000000000"},
		BudgetConfig{ID: "wf", Tenant: "acme", Amount: "1000000000", Scope: Scope{Workflow: "w"}},
		BudgetConfig{ID: "team", Tenant: "acme", Amount: "1000000000", Scope: Scope{Team: "legal"}},
		BudgetConfig{ID: "tok", Tenant: "acme", Amount: "1000000000000", Unit: UnitTokens})
	ev := priced("x", "acme", "w", clock.Now().Add(-time.Minute), "0.123456789012")
	ev.Team, ev.UserID, ev.PriceID, ev.TaskID = "legal", "u-1", "openai/gpt-4o/standard@2024-08-06", "t"
	var enc contract.Encoder
	raw, err := enc.AppendPriced(nil, ev)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var e event.PricedUsageEvent
		if err := decodePriced(raw, &e); err != nil {
			b.Fatal(err)
		}
		e.EventID = strconv.Itoa(i)
		l.apply(&e)
	}
}
