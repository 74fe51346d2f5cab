package budget

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shopspring/decimal"
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
