package budget

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/money"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/role"
)

// fixedPricer prices every call at 0.01 HKD per token (hand-checkable).
type fixedPricer struct{}

func (fixedPricer) Price(ev *event.UsageEvent, cur string, out *event.PricedUsageEvent) error {
	out.BillingCurrency = cur
	out.BilledEffectiveCost = money.MustDecimal(decimal.NewFromInt(ev.InputTokens + ev.OutputTokens).Mul(decimal.RequireFromString("0.01")))
	return nil
}

func apiServer(t testing.TB) (*Budget, *httptest.Server) {
	t.Helper()
	cfg := Config{Budgets: []BudgetConfig{
		{ID: "acme-legal", Tenant: "acme", Amount: "100", Mode: ModeEnforce, Scope: Scope{Workflow: "legal"}, Owner: "legal-ops"},
		{ID: "globex-all", Tenant: "globex", Amount: "5"},
	}}
	cfg.ApplyDefaults()
	clock := &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, hkt)}
	r, err := newBudget(cfg, fixedPricer{}, role.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Tenants: testTenants(t)}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	r.ledger.ready.Store(true)
	mux := http.NewServeMux()
	r.routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return r, srv
}

func call(t testing.TB, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func TestDecisionAPIOverHTTP(t *testing.T) {
	r, srv := apiServer(t)
	r.ledger.apply(priced("e1", "acme", "legal", time.Date(2026, 11, 20, 11, 0, 0, 0, hkt), "90"))

	if code := call(t, "POST", srv.URL+"/v1/budget/check", "", map[string]any{"workflow": "legal"}, nil); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code := call(t, "POST", srv.URL+"/v1/budget/check", "wrong", map[string]any{"workflow": "legal"}, nil); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	if code := call(t, "POST", srv.URL+"/v1/budget/check", "acme-token", map[string]any{"tenant": "globex"}, nil); code != 403 {
		t.Fatalf("other tenant: %d", code)
	}
	// By model: 600+300 tokens × 0.01 = 9 HKD ≤ 10 left → allow and reserve.
	var cr CheckResponse
	code := call(t, "POST", srv.URL+"/v1/budget/check", "acme-token", map[string]any{"workflow": "legal", "provider": "openai",
		"model": "gpt-4o", "estimated_input_tokens": 600, "estimated_output_tokens": 300, "reserve": true, "request_id": "req-1"}, &cr)
	if code != 200 || cr.Decision != DecisionAllow || !cr.Reserved || cr.EstimatedCost.String() != "9" || cr.Remaining.String() != "10" || cr.BudgetID != "acme-legal" {
		t.Fatalf("by model: %d %+v", code, cr)
	}
	// 10 - 9 reserved = 1 left; an estimate of 1.01 is denied.
	code = call(t, "POST", srv.URL+"/v1/budget/check", "acme-token", map[string]any{"workflow": "legal", "estimated_cost": "1.01"}, &cr)
	if code != 200 || cr.Decision != DecisionDeny || cr.Remaining.String() != "1" {
		t.Fatalf("deny: %d %+v", code, cr)
	}
	var rel map[string]any
	call(t, "POST", srv.URL+"/v1/budget/release", "acme-token", map[string]any{"request_id": "req-1"}, &rel)
	if rel["released"] != true {
		t.Fatalf("release: %v", rel)
	}

	// Listing shows only the caller's budgets.
	var list struct {
		Tenant  string   `json:"tenant"`
		Budgets []Status `json:"budgets"`
	}
	call(t, "GET", srv.URL+"/v1/budgets", "acme-token", nil, &list)
	if len(list.Budgets) != 1 || list.Budgets[0].ID != "acme-legal" || list.Budgets[0].Spent.String() != "90" ||
		list.Budgets[0].Remaining.String() != "10" || list.Budgets[0].Owner != "legal-ops" {
		t.Fatalf("acme list: %+v", list)
	}
	var st Status
	if code := call(t, "GET", srv.URL+"/v1/budgets/acme-legal", "acme-token", nil, &st); code != 200 || st.Period != "2026-11" ||
		len(st.Crossed) != 3 || st.Crossed[1].Threshold.String() != "80" || st.Crossed[2].Kind != KindProjectedOverrun ||
		st.Projected.String() != "138.46" {
		// 90 HKD after 19.5 of November's 30 days (Nov 20 12:00 HKT): 90×30/19.5 = 138.4615… > 100,
		// so the projected overrun was raised too.
		t.Fatalf("get: %d %+v", code, st)
	}
	if code := call(t, "GET", srv.URL+"/v1/budgets/acme-legal", "globex-token", nil, nil); code != 404 {
		t.Fatalf("globex sees acme's budget: %d", code)
	}
	call(t, "GET", srv.URL+"/v1/budgets", "globex-token", nil, &list)
	if len(list.Budgets) != 1 || list.Budgets[0].ID != "globex-all" {
		t.Fatalf("globex list: %+v", list)
	}
}

// FuzzCheckBody: any body gets a 200 with a decision, or a 4xx; never a
// panic, never a 5xx.
func FuzzCheckBody(f *testing.F) {
	for _, s := range []string{
		`{"workflow":"legal","estimated_cost":"1.5","reserve":true,"request_id":"x"}`,
		`{"workflow":"legal","estimated_cost":-1}`,
		`{"model":"gpt-4o","provider":"openai","estimated_input_tokens":10,"estimated_output_tokens":5}`,
		`{"estimated_input_tokens":-5}`, `{"tenant":"globex"}`, `{"unknown":1}`, `[]`, `{`, ``,
		`{"estimated_cost":"1e400"}`, `{"estimated_cost":"NaN"}`,
	} {
		f.Add([]byte(s))
	}
	r, _ := apiServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/budget/check", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer acme-token")
		w := httptest.NewRecorder()
		r.handleCheck(w, req)
		switch {
		case w.Code == 200:
			var cr CheckResponse
			if err := json.Unmarshal(w.Body.Bytes(), &cr); err != nil || (cr.Decision != DecisionAllow && cr.Decision != DecisionDeny) {
				t.Fatalf("200 without a decision: %s", w.Body)
			}
		case w.Code >= 400 && w.Code < 500:
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}

// An ask-by-model estimate is priced with the shipped catalogue, contracts
// and FX, exactly like real usage.
func TestEstimateByModelUsesCatalogueContractsAndFX(t *testing.T) {
	eng, err := pricing.Load(pricing.Config{Catalogues: []string{"prices/catalogue.yaml"},
		Contracts: "prices/contracts.yaml", FX: "prices/fx.csv"},
		func(p string) string { return filepath.Join("..", "..", "pipelines", p) })
	if err != nil {
		t.Fatal(err)
	}
	r, _ := apiServer(t)
	r.prices = eng
	acme, _ := testTenants(t).Lookup("acme")
	resp, code, err := r.Check(acme, &CheckRequest{Workflow: "legal", Provider: "openai", Model: "gpt-4o",
		EstimatedInputTokens: 1_000_000, EstimatedOutputTokens: 100_000})
	if err != nil {
		t.Fatal(code, err)
	}
	// gpt-4o standard list: 1M input × 2.50 + 0.1M output × 10.00 = 3.50 USD;
	// acme's OpenAI contract: 12.5% off → 3.0625 USD; FX from 2026-11-01: 7.7850 HKD/USD
	// → 3.0625 × 7.7850 = 3 × 7.785 + 0.0625 × 7.785 = 23.355 + 0.4865625 = 23.8415625 HKD.
	if !resp.EstimatedCost.Equal(decimal.RequireFromString("23.8415625")) || resp.EstimatedTokens != 1_100_000 {
		t.Fatalf("estimate %s HKD, %d tokens", resp.EstimatedCost, resp.EstimatedTokens)
	}
	if _, code, err := r.Check(acme, &CheckRequest{Provider: "openai", Model: "no-such-model", EstimatedInputTokens: 1}); err == nil || code != 422 {
		t.Fatalf("unknown model: %d %v", code, err)
	}
}
