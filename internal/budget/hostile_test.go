package budget

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/role"
)

// Regression tests for the budget API attacks of issue 17.

func tokenBudgetServer(t *testing.T) *httptest.Server {
	t.Helper()
	cfg := Config{Budgets: []BudgetConfig{
		{ID: "acme-tokens", Tenant: "acme", Amount: "500000000", Unit: UnitTokens, Mode: ModeEnforce},
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
	return srv
}

// Item 3: estimated_input_tokens 2^63-1 plus estimated_output_tokens 2
// wrapped to a negative estimate that an enforced 500M-token budget allowed
// and reserved; repeated, the budget admitted 5e9 tokens.
func TestHostileTokenEstimateOverflowIsRefused(t *testing.T) {
	srv := tokenBudgetServer(t)
	var cr CheckResponse
	code := call(t, "POST", srv.URL+"/v1/budget/check", "acme-token",
		map[string]any{"estimated_input_tokens": int64(9223372036854775807), "estimated_output_tokens": 2, "reserve": true}, &cr)
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("overflowing estimate: %d %+v", code, cr)
	}
	// 1e9 + 1e9 is within the per-field limit and is denied by the 500M budget.
	code = call(t, "POST", srv.URL+"/v1/budget/check", "acme-token",
		map[string]any{"estimated_input_tokens": 1_000_000_000, "estimated_output_tokens": 1_000_000_000, "reserve": true}, &cr)
	if code != http.StatusOK || cr.Decision != DecisionDeny || cr.EstimatedTokens != 2_000_000_000 {
		t.Errorf("2e9 tokens: %d %+v", code, cr)
	}
	// Just over the per-field maximum: refused, naming the field and the limit.
	var e apiError
	code = call(t, "POST", srv.URL+"/v1/budget/check", "acme-token", map[string]any{"estimated_output_tokens": 1_000_000_001}, &e)
	if code != http.StatusUnprocessableEntity || !strings.Contains(e.Error, "estimated_output_tokens: 1000000001 exceeds limits.max_tokens (1000000000") {
		t.Errorf("over max_tokens: %d %+v", code, e)
	}
}

// Item 12: the API accepted trailing garbage and text/plain, and answered a
// body over 64 KiB with "unexpected EOF" (400) instead of 413.
func TestHostileBudgetBodies(t *testing.T) {
	srv := tokenBudgetServer(t)
	post := func(ct string, body []byte) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/budget/check", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer acme-token")
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ok := []byte(`{"estimated_input_tokens":10}`)
	for _, c := range []struct {
		name, ct string
		body     []byte
		code     int
		msg      string
	}{
		{"plain", "application/json", ok, 200, `"decision":"allow"`},
		{"no content type", "", ok, 200, `"decision":"allow"`},
		{"text/plain", "text/plain", ok, 415, "is not application/json"},
		{"trailing garbage", "application/json", append(append([]byte{}, ok...), " garbage"...), 400, "data after the JSON object"},
		{"second object", "application/json", append(append([]byte{}, ok...), ok...), 400, "data after the JSON object"},
		{"over 64 KiB", "application/json", []byte(`{"workflow":"` + strings.Repeat("w", 70<<10) + `"}`), 413, "larger than 65536 bytes"},
		{"deep", "application/json", []byte(strings.Repeat("[", 60000)), 400, "limits.max_depth"},
		{"long workflow", "application/json", []byte(`{"workflow":"` + strings.Repeat("w", 2000) + `"}`), 422, "over limits.max_string_bytes"},
	} {
		code, body := post(c.ct, c.body)
		if code != c.code || !strings.Contains(body, c.msg) {
			t.Errorf("%s: %d %.200s, want %d with %q", c.name, code, body, c.code, c.msg)
		}
	}
}
