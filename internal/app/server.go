package app

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/httpx"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/net/netutil"

	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// Validate checks the http: section.
func (h *HTTPConfig) Validate() error {
	var errs []error
	if h.ReadTimeout < 0 {
		errs = append(errs, fmt.Errorf("read_timeout: must not be negative"))
	}
	if h.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("max_connections: must not be negative"))
	}
	if h.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("idle_timeout: must not be negative"))
	}
	errs = append(errs, h.TLS.Validate()...)
	if h.MetricsTokenFile != "" {
		if _, err := os.Stat(h.MetricsTokenFile); err != nil {
			errs = append(errs, fmt.Errorf("metrics_token_file: %v", err))
		}
	}
	if h.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(h.MetricsListen); err != nil {
			errs = append(errs, fmt.Errorf("metrics_listen: %q is not host:port: %v", h.MetricsListen, err))
		} else if h.MetricsListen == h.Listen {
			errs = append(errs, fmt.Errorf("metrics_listen: %q is also listen", h.MetricsListen))
		}
	}
	return errors.Join(errs...)
}

// metricsToken is the /metrics bearer token: env TOKENMETER_METRICS_TOKEN,
// else the first line of http.metrics_token_file, else "" (none). Secrets
// come only from the environment or a file, and are never logged.
func (h *HTTPConfig) metricsToken() (string, error) {
	if v := os.Getenv("TOKENMETER_METRICS_TOKEN"); v != "" {
		return v, nil
	}
	if h.MetricsTokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(h.MetricsTokenFile)
	if err != nil {
		return "", fmt.Errorf("http.metrics_token_file: %w", err)
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	if tok = strings.TrimSpace(tok); tok == "" {
		return "", fmt.Errorf("http.metrics_token_file: %s is empty", h.MetricsTokenFile)
	}
	return tok, nil
}

// guardMetrics puts /metrics behind the token; without one, only loopback
// clients are answered (the metrics name every tenant and budget).
func guardMetrics(next http.Handler, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" {
			got := tenant.BearerToken(r.Header.Get("Authorization"))
			if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tokenmeter-metrics"`)
				httpx.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated",
					"message": "/metrics needs the metrics bearer token (http.metrics_token_file or TOKENMETER_METRICS_TOKEN)"})
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			httpx.WriteJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden",
				"message": "/metrics answers loopback clients only unless http.metrics_token_file (or TOKENMETER_METRICS_TOKEN) or http.metrics_listen is set"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// newAPIServer is the API server with its read bounds and TLS.
func newAPIServer(h HTTPConfig, handler http.Handler) (*http.Server, error) {
	tc, err := h.TLS.Server()
	if err != nil {
		return nil, fmt.Errorf("http.%w", err)
	}
	return &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: h.ReadTimeout,
		IdleTimeout: h.IdleTimeout, TLSConfig: tc}, nil
}

// limitListener caps ln's open connections (0: no cap).
func limitListener(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		return ln
	}
	return netutil.LimitListener(ln, n)
}

// serve runs srv on ln, over TLS when srv has a TLS config.
func serve(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}

// applyMemoryLimit sets the Go runtime's soft memory limit from
// limits.memory_limit unless GOMEMLIMIT is set (the runtime read it already).
// It returns the limit in force (math.MaxInt64: none).
func applyMemoryLimit(limit int64) int64 {
	if limit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
	return debug.SetMemoryLimit(-1)
}
