package budget

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/httpx"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/ingest"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// routes registers the budget API on mux.
//
//	POST /v1/budget/check    decide (and optionally reserve) one model call
//	POST /v1/budget/release  release a reservation whose call was not made
//	GET  /v1/budgets         the caller's budgets
//	GET  /v1/budgets/{id}    one of them
func (r *Budget) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/budget/check", r.handleCheck)
	mux.HandleFunc("POST /v1/budget/release", r.handleRelease)
	mux.HandleFunc("GET /v1/budgets", r.handleList)
	mux.HandleFunc("GET /v1/budgets/{id}", r.handleGet)
}

type apiError struct {
	Error string `json:"error"`
}

// authenticate resolves the bearer token to a tenant, or answers 401.
func (r *Budget) authenticate(w http.ResponseWriter, req *http.Request) (*tenant.Tenant, bool) {
	token := tenant.BearerToken(req.Header.Get("Authorization"))
	if token == "" {
		httpx.Challenge(w, false)
		httpx.WriteJSON(w, http.StatusUnauthorized, apiError{"missing bearer token"})
		return nil, false
	}
	t, ok := r.deps.Tenants.Authenticate(token)
	if !ok {
		httpx.Challenge(w, true)
		httpx.WriteJSON(w, http.StatusUnauthorized, apiError{"unknown bearer token"})
		return nil, false
	}
	return t, true
}

// maxAPIBody caps a budget API request body; a check request is a few hundred bytes.
const maxAPIBody = 64 << 10

// bodyError is a request body the API refuses, with its HTTP status.
type bodyError struct {
	code int
	msg  string
}

func (e *bodyError) Error() string { return e.msg }

// decodeBody reads exactly one JSON object of at most maxAPIBody bytes into
// v: Content-Type application/json (or none), no unknown field, nothing
// after the object, nesting bounded by limits.max_depth. A *bodyError says
// which status to answer (413 for size, 415 for the media type, else 400).
func decodeBody(req *http.Request, lim limits.Limits, v any) error {
	if ct := req.Header.Get("Content-Type"); strings.TrimSpace(ct) != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &bodyError{http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not application/json", ct)}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, req.Body, maxAPIBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &bodyError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", maxAPIBody)}
		}
		return &bodyError{http.StatusBadRequest, "cannot read body: " + err.Error()}
	}
	lim.ApplyDefaults()
	if err := ingest.CheckDepth(body, lim.MaxDepth); err != nil {
		return &bodyError{http.StatusBadRequest, err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &bodyError{http.StatusBadRequest, "invalid JSON body: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &bodyError{http.StatusBadRequest, "invalid JSON body: data after the JSON object"}
	}
	return nil
}

// writeBodyError answers a decodeBody failure.
func writeBodyError(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	var be *bodyError
	if errors.As(err, &be) {
		code = be.code
	}
	httpx.WriteJSON(w, code, apiError{err.Error()})
}

func (r *Budget) handleCheck(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	t, ok := r.authenticate(w, req)
	if !ok {
		return
	}
	var cr CheckRequest
	if err := decodeBody(req, r.deps.Limits, &cr); err != nil {
		writeBodyError(w, err)
		return
	}
	resp, code, err := r.Check(t, &cr)
	if err != nil {
		httpx.WriteJSON(w, code, apiError{err.Error()})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, resp)
	if r.decisions != nil {
		ctx := context.Background()
		r.decisions.Add(ctx, 1, metric.WithAttributes(attribute.String("decision", resp.Decision), attribute.String("state", resp.State)))
		r.latency.Record(ctx, time.Since(start).Seconds())
	}
}

// Check decides one request of tenant t. The error is a client error with
// its HTTP status.
func (r *Budget) Check(t *tenant.Tenant, cr *CheckRequest) (CheckResponse, int, error) {
	if cr.Tenant != "" && cr.Tenant != t.ID {
		return CheckResponse{}, http.StatusForbidden, fmt.Errorf("tenant %q is not the token's tenant", cr.Tenant)
	}
	est, err := r.estimate(t, cr)
	if err != nil {
		return CheckResponse{}, http.StatusUnprocessableEntity, err
	}
	if cr.Reserve && cr.RequestID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		cr.RequestID = hex.EncodeToString(b[:])
	}
	resp := r.ledger.check(t, cr, est, r.cfg.NotReadyPolicy)
	resp.CommitmentAdvice = r.adviseCommitment(t, cr)
	return resp, http.StatusOK, nil
}

// estimate turns a request into its expected cost (reporting currency) and tokens.
func (r *Budget) estimate(t *tenant.Tenant, cr *CheckRequest) (estimate, error) {
	lim := r.deps.Limits.OrDefault()
	if cr.EstimatedInputTokens < 0 || cr.EstimatedOutputTokens < 0 {
		return estimate{}, errors.New("estimated_input_tokens and estimated_output_tokens must be >= 0")
	}
	// Each count is bounded as a usage event's is, so the sum cannot wrap
	// around into a negative estimate that a tokens budget would admit.
	for _, f := range []struct {
		name string
		v    int64
	}{{"estimated_input_tokens", cr.EstimatedInputTokens}, {"estimated_output_tokens", cr.EstimatedOutputTokens}} {
		if f.v > lim.MaxTokens {
			return estimate{}, fmt.Errorf("%s: %d exceeds limits.%s (%d per call)", f.name, f.v, limits.BreachTokens, lim.MaxTokens)
		}
	}
	for _, f := range []struct{ name, v string }{{"tenant", cr.Tenant}, {"workflow", cr.Workflow}, {"team", cr.Team},
		{"user", cr.User}, {"provider", cr.Provider}, {"model", cr.Model}, {"service_tier", cr.ServiceTier}} {
		if len(f.v) > lim.MaxStringBytes {
			return estimate{}, fmt.Errorf("%s: is %d bytes, over limits.%s (%d)", f.name, len(f.v), limits.BreachString, lim.MaxStringBytes)
		}
	}
	if len(cr.RequestID) > 256 {
		return estimate{}, fmt.Errorf("request_id: is longer than 256 bytes")
	}
	tokens, ok := limits.AddTokens(cr.EstimatedInputTokens, cr.EstimatedOutputTokens)
	if !ok {
		return estimate{}, errors.New("estimated_input_tokens + estimated_output_tokens overflows")
	}
	est := estimate{tokens: tokens}
	switch {
	case cr.EstimatedCost != nil:
		if cr.EstimatedCost.IsNegative() {
			return estimate{}, errors.New("estimated_cost must be >= 0")
		}
		est.cost = *cr.EstimatedCost
	case cr.Model != "":
		if r.prices == nil {
			return estimate{}, errors.New("no price catalogue loaded: send estimated_cost instead of model")
		}
		ev := event.UsageEvent{EventID: "budget-estimate", EventTime: r.now().UTC(), Tenant: t.ID,
			Provider: cr.Provider, Model: cr.Model, ServiceTier: cr.ServiceTier,
			InputTokens: cr.EstimatedInputTokens, OutputTokens: cr.EstimatedOutputTokens,
			Workflow: cr.Workflow, Team: cr.Team, UserID: cr.User}
		if ev.ServiceTier == "" {
			ev.ServiceTier = event.ServiceTierStandard
		}
		out := event.PricedUsageEvent{UsageEvent: ev}
		if err := r.prices.Price(&ev, t.ReportingCurrency, &out); err != nil {
			return estimate{}, fmt.Errorf("cannot price %s/%s: %w", cr.Provider, cr.Model, err)
		}
		est.cost = out.BilledEffectiveCost.Decimal()
	}
	return est, nil
}

type releaseRequest struct {
	RequestID string `json:"request_id"`
}

func (r *Budget) handleRelease(w http.ResponseWriter, req *http.Request) {
	t, ok := r.authenticate(w, req)
	if !ok {
		return
	}
	var rr releaseRequest
	if err := decodeBody(req, r.deps.Limits, &rr); err != nil {
		writeBodyError(w, err)
		return
	}
	if rr.RequestID == "" {
		httpx.WriteJSON(w, http.StatusBadRequest, apiError{"body must be {\"request_id\": \"...\"}"})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"request_id": rr.RequestID, "released": r.ledger.release(t.ID, rr.RequestID)})
}

func (r *Budget) handleList(w http.ResponseWriter, req *http.Request) {
	t, ok := r.authenticate(w, req)
	if !ok {
		return
	}
	out := []Status{}
	for _, b := range r.ledger.byTenant[t.ID] {
		out = append(out, r.ledger.status(b))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"tenant": t.ID, "budgets": out})
}

func (r *Budget) handleGet(w http.ResponseWriter, req *http.Request) {
	t, ok := r.authenticate(w, req)
	if !ok {
		return
	}
	b := r.ledger.byID[req.PathValue("id")]
	// Another tenant's budget is answered like a missing one.
	if b == nil || b.def.Tenant.ID != t.ID {
		httpx.WriteJSON(w, http.StatusNotFound, apiError{"no such budget"})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, r.ledger.status(b))
}
