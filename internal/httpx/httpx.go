// Package httpx holds what every HTTP API of tokenmeter answers the same way:
// JSON bodies and the bearer-token challenge. Each API keeps its own error
// body shape (the collector's per-item rejections, OTLP's Status, the
// gateway's provider-shaped errors), written through WriteJSON.
package httpx

import (
	"encoding/json"
	"net/http"
)

// WriteJSON answers code with v encoded as JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Challenge sets the WWW-Authenticate header of a 401 (RFC 6750): a missing
// token gets the bare challenge, a token that was sent but is not known gets
// error="invalid_token".
func Challenge(w http.ResponseWriter, invalidToken bool) {
	if invalidToken {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tokenmeter", error="invalid_token"`)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="tokenmeter"`)
}
