package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/collector"
)

// Issue 17 item 10: /metrics had no auth and named every tenant and budget.
func TestMetricsGuard(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "tokenmeter_x 1\n") })
	get := func(h http.Handler, remote, auth string) int {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.RemoteAddr = remote
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	open := guardMetrics(inner, "")
	if c := get(open, "127.0.0.1:5000", ""); c != 200 {
		t.Errorf("no token, loopback: %d", c)
	}
	if c := get(open, "[::1]:5000", ""); c != 200 {
		t.Errorf("no token, ::1: %d", c)
	}
	if c := get(open, "10.1.2.3:5000", ""); c != 403 {
		t.Errorf("no token, remote: %d", c)
	}
	tok := guardMetrics(inner, "m-secret")
	for _, c := range []struct {
		remote, auth string
		code         int
	}{{"10.1.2.3:5000", "Bearer m-secret", 200}, {"10.1.2.3:5000", "", 401}, {"127.0.0.1:5000", "", 401}, {"10.1.2.3:5000", "Bearer demo-acme-token", 401}} {
		if got := get(tok, c.remote, c.auth); got != c.code {
			t.Errorf("token %q from %s: %d, want %d", c.auth, c.remote, got, c.code)
		}
	}
	// The token comes from the environment or a file, never the config text.
	dir := t.TempDir()
	f := filepath.Join(dir, "metrics-token")
	if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := HTTPConfig{MetricsTokenFile: f}
	t.Setenv("TOKENMETER_METRICS_TOKEN", "")
	if got, err := h.metricsToken(); err != nil || got != "from-file" {
		t.Errorf("file token %q %v", got, err)
	}
	t.Setenv("TOKENMETER_METRICS_TOKEN", "from-env")
	if got, _ := h.metricsToken(); got != "from-env" {
		t.Errorf("env token %q", got)
	}
}

// Issue 17 item 12: without a ReadTimeout a slow body held a connection for
// minutes. The server now closes it after http.read_timeout.
func TestAPIServerDropsSlowBodies(t *testing.T) {
	srv, err := newAPIServer(HTTPConfig{ReadTimeout: 300 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			w.WriteHeader(http.StatusRequestTimeout)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = serve(srv, ln) }()
	defer srv.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc")
	// Send nothing more; the server must give up on its own (the test's
	// deadline is far above the read timeout, and not a speed assumption).
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("connection still open: no read timeout")
		}
	}
}

// The API server serves TLS and, with client_ca_file, requires a client
// certificate from that CA (as the OTLP listeners do).
func TestAPIServerMutualTLS(t *testing.T) {
	dir := t.TempDir()
	caKey, caCert, caPEM := selfSigned(t, nil, nil, true, 0)
	srvKey, _, srvPEM := selfSigned(t, caKey, caCert, false, x509.ExtKeyUsageServerAuth)
	cliKey, _, cliPEM := selfSigned(t, caKey, caCert, false, x509.ExtKeyUsageClientAuth)
	w := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	h := HTTPConfig{TLS: collector.TLSConfig{CertFile: w("srv.pem", srvPEM), KeyFile: w("srv.key", keyPEM(t, srvKey)), ClientCAFile: w("ca.pem", caPEM)}}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := newAPIServer(h, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	if err != nil {
		t.Fatal(err)
	}
	srv.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = serve(srv, ln) }()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
	}
	url := "https://" + ln.Addr().String() + "/"
	if _, err := client().Get(url); err == nil {
		t.Error("no client certificate: answered")
	}
	cc, err := tls.X509KeyPair(cliPEM, keyPEM(t, cliKey))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client(cc).Get(url)
	if err != nil {
		t.Fatalf("with client certificate: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Errorf("body %q", b)
	}
	// Plain HTTP to the TLS port is never served by the handler.
	if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP served")
		}
	}
}

func selfSigned(t *testing.T, parentKey *ecdsa.PrivateKey, parent *x509.Certificate, isCA bool, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: isCA, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	if !isCA {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// The limits, http and embedded-broker settings of issue 17 are validated
// with their paths, like every other section.
func TestValidateLimitsAndExposure(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(write(t, `
roles: [collector]
http: {listen: ":8080", metrics_listen: ":8080", read_timeout: -1s, tls: {cert_file: /nonexistent.pem}}
limits: {max_depth: 1, max_string_bytes: 10, max_tokens: 9223372036854775807, max_record_bytes: 1048576, memory_limit: 1000}
kafka: {embedded: {listen: "0.0.0.0:19092"}}
tenants: [{id: acme, time_zone: UTC, token_env: [X]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	if err == nil {
		t.Fatal("validated")
	}
	for _, want := range []string{
		"http.read_timeout: must not be negative",
		"http.tls: cert_file and key_file must be set together",
		"http.metrics_listen: \":8080\" is also listen",
		"limits.max_depth: must be between 2 and 1000; got 1",
		"limits.max_string_bytes: must be at least 64; got 10",
		"limits.max_tokens: must be between 1 and 1e15",
		"limits.max_record_bytes: must be between 4096 and 524294",
		"limits.memory_limit: 1000 bytes is below 64 MiB",
		"kafka.embedded.listen: \"0.0.0.0:19092\" is not a loopback address",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
