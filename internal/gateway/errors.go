package gateway

import (
	"encoding/json"
	"net/http"
)

// Error answers in each provider's own shape, so the official SDKs raise
// their usual exception types with the gateway's message. Budget denials
// and client errors carry x-should-retry: false (both SDKs honour it), so a
// denied call is not retried; 5xx answers invite a retry.

// Error kinds, mapped to each provider's type and status.
type errKind int

const (
	errAuth errKind = iota + 1
	errInvalid
	errTooLarge
	errBudget
	errUpstream
	errUnavailable
	errNotFound
)

// writeError answers err in api's shape.
func writeError(w http.ResponseWriter, api API, kind errKind, msg string) {
	status, oaType, oaCode, anType := http.StatusInternalServerError, "server_error", "", "api_error"
	switch kind {
	case errAuth:
		status, oaType, oaCode, anType = http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "authentication_error"
	case errInvalid:
		status, oaType, oaCode, anType = http.StatusBadRequest, "invalid_request_error", "invalid_request", "invalid_request_error"
	case errTooLarge:
		status, oaType, oaCode, anType = http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large", "request_too_large"
	case errBudget:
		// OpenAI answers exhausted quota with 429 insufficient_quota;
		// Anthropic has no quota error, and a permission_error (403) is
		// what no client retries.
		status, oaType, oaCode, anType = http.StatusTooManyRequests, "insufficient_quota", "budget_exceeded", "permission_error"
		if api == APIMessages {
			status = http.StatusForbidden
		}
	case errUpstream:
		status, oaType, oaCode, anType = http.StatusBadGateway, "server_error", "upstream_unreachable", "api_error"
	case errUnavailable:
		status, oaType, oaCode, anType = http.StatusServiceUnavailable, "server_error", "gateway_shutting_down", "overloaded_error"
	case errNotFound:
		status, oaType, oaCode, anType = http.StatusNotFound, "invalid_request_error", "unknown_url", "not_found_error"
	}
	writeErrorBody(w, api, status, oaType, oaCode, anType, msg)
}

// writeErrorStatus answers a budget denial with the given status.
func writeErrorStatus(w http.ResponseWriter, api API, status int, msg string) {
	writeErrorBody(w, api, status, "insufficient_quota", "budget_exceeded", "permission_error", msg)
}

func writeErrorBody(w http.ResponseWriter, api API, status int, oaType, oaCode, anType, msg string) {
	if status < 500 {
		w.Header().Set("X-Should-Retry", "false")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var body any
	if api == APIMessages {
		body = map[string]any{"type": "error", "error": map[string]any{"type": anType, "message": msg}}
	} else {
		var code any
		if oaCode != "" {
			code = oaCode
		}
		body = map[string]any{"error": map[string]any{"message": msg, "type": oaType, "param": nil, "code": code}}
	}
	_ = json.NewEncoder(w).Encode(body)
}
