package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/tokenmeter/tokenmeter/internal/budget"
)

// External gateways ask the same ledger through two endpoints on the API
// server (http.listen):
//
//	ANY /v1/gateway/envoy/<original path>  Envoy ext_authz HTTP service
//	                                        (http_service.path_prefix: /v1/gateway/envoy)
//	ANY /v1/gateway/auth-request            nginx auth_request (original URI in X-Original-URI)
//
// Both authenticate the client's gateway key (Authorization: Bearer or
// x-api-key, as the client sent it), estimate the call from its body when
// the proxy passes it (Envoy with_request_body) or else from the headers
// X-Tokenmeter-Model and X-Tokenmeter-Max-Tokens, and check and reserve
// under the request id (X-Request-Id, which both proxies set). 200 allows
// (with X-Tokenmeter-Request-Id and X-Tokenmeter-Remaining for the
// upstream request); a denial is 403 with the provider-shaped error body,
// which Envoy relays to the client as is (nginx answers its own 403 unless
// error_page maps it). Neither proxy shows tokenmeter the answer, so the
// reservation is settled by the usage event carrying attribute
// budget.request_id = that id (from the app, an OTel span attribute, or
// Envoy AI Gateway's usage), or released after budget.reservation_ttl.
func (g *Gateway) routes(mux *http.ServeMux) {
	mux.HandleFunc("/v1/gateway/envoy/", func(w http.ResponseWriter, r *http.Request) {
		g.authorize(w, r, strings.TrimPrefix(r.URL.Path, "/v1/gateway/envoy"), true)
	})
	mux.HandleFunc("/v1/gateway/auth-request", func(w http.ResponseWriter, r *http.Request) {
		orig := r.Header.Get("X-Original-URI")
		if i := strings.IndexByte(orig, '?'); i >= 0 {
			orig = orig[:i]
		}
		g.authorize(w, r, orig, false)
	})
}

// authzVerdict is a decision of the external endpoints: 200 allows.
type authzVerdict struct {
	status  int
	headers http.Header
	body    []byte
}

func (v *authzVerdict) write(w http.ResponseWriter) {
	for k, vs := range v.headers {
		w.Header()[k] = vs
	}
	w.WriteHeader(v.status)
	_, _ = w.Write(v.body)
}

// authorize decides one external call over HTTP.
func (g *Gateway) authorize(w http.ResponseWriter, r *http.Request, path string, readBody bool) {
	var body []byte
	if readBody {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, apiOf(path), errTooLarge, fmt.Sprintf("request body larger than %d bytes", g.cfg.MaxBodyBytes))
			return
		}
	}
	v := g.decide(path, r.Header, body, r.ContentLength)
	v.write(w)
}

// decide checks and reserves one call seen by an external proxy: its
// original path, headers (the client's key among them) and, when the
// proxy passes it, body. contentLength bounds the input when there is no body.
func (g *Gateway) decide(path string, hdr http.Header, body []byte, contentLength int64) *authzVerdict {
	v := &authzVerdict{status: http.StatusOK, headers: http.Header{}}
	g.decideInto(v, path, hdr, body, contentLength)
	return v
}

// authzVerdict collects the answer as an http.ResponseWriter, so the HTTP
// and gRPC endpoints share one decision and one error shape.
func (v *authzVerdict) Header() http.Header    { return v.headers }
func (v *authzVerdict) WriteHeader(status int) { v.status = status }
func (v *authzVerdict) Write(b []byte) (int, error) {
	v.body = append(v.body, b...)
	return len(b), nil
}

func (g *Gateway) decideInto(w http.ResponseWriter, path string, hdr http.Header, body []byte, contentLength int64) {
	api := apiOf(path)
	if api == 0 {
		// Not a model call: nothing to meter, let it through.
		w.Header().Set("X-Tokenmeter-Decision", "not_metered")
		w.WriteHeader(http.StatusOK)
		return
	}
	k, ok := g.lookupKey(clientKeyOf(hdr))
	if !ok {
		writeError(w, api, errAuth, "unknown or missing API key for the tokenmeter gateway")
		return
	}
	attr := g.attribute(k, hdr)
	var cr callRequest
	if len(body) > 0 {
		var err error
		if cr, err = parseCall(api, body); err != nil {
			writeError(w, api, errInvalid, err.Error())
			return
		}
	} else {
		cr.Model = hdr.Get("X-Tokenmeter-Model")
		if cr.Model == "" {
			writeError(w, api, errInvalid, "without the request body, X-Tokenmeter-Model is required to estimate the call")
			return
		}
		if v := hdr.Get("X-Tokenmeter-Max-Tokens"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				writeError(w, api, errInvalid, "X-Tokenmeter-Max-Tokens: not a non-negative integer")
				return
			}
			cr.MaxTokens = &n
		}
		// The body size bounds the input tokens; Content-Length is the
		// original request's when the proxy forwards it.
		n, _ := strconv.ParseInt(hdr.Get("X-Original-Content-Length"), 10, 64)
		if n <= 0 {
			n = contentLength
		}
		if n > 0 {
			body = make([]byte, min(n, g.cfg.MaxBodyBytes))
		}
	}
	p, err := g.est.worstCase(api, body, cr, attr.tenant.ID, attr.tenant.ReportingCurrency)
	if err != nil {
		writeError(w, api, errInvalid, fmt.Sprintf("tokenmeter cannot price %s/%s: %v", api.provider(), cr.Model, err))
		return
	}
	reqID := hdr.Get("X-Request-Id")
	if reqID == "" {
		reqID = newRequestID()
	}
	cost := p.cost
	dec, code, err := g.ledger.Check(attr.tenant, &budget.CheckRequest{
		Workflow: attr.workflow, Team: attr.team, User: attr.user, APIKey: attr.key,
		EstimatedCost: &cost, Provider: api.provider(), Model: cr.Model,
		EstimatedInputTokens: p.inputTokens, EstimatedOutputTokens: p.outputTokens,
		Reserve: true, RequestID: reqID,
	})
	if err != nil {
		writeError(w, api, errInvalid, fmt.Sprintf("budget check failed (%d): %v", code, err))
		return
	}
	w.Header().Set("X-Tokenmeter-Request-Id", reqID)
	w.Header().Set("X-Tokenmeter-Decision", dec.Decision)
	if dec.Remaining != nil {
		w.Header().Set("X-Tokenmeter-Remaining", dec.Remaining.String())
	}
	if dec.Decision == budget.DecisionDeny {
		g.stats.Denied.Add(1)
		g.count(api, "denied")
		// 403 for both: Envoy relays any non-200 as the denial; nginx only
		// accepts 401/403 from an auth_request.
		writeErrorStatus(w, api, http.StatusForbidden, "tokenmeter budget: "+dec.Reason)
		return
	}
	g.stats.Allowed.Add(1)
	g.count(api, "allowed")
	w.WriteHeader(http.StatusOK)
}
