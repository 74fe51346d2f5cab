package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/telemetry"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestRunEmbeddedServesHealthAndStopsCleanly runs the process wiring with no
// roles' external dependencies: the embedded broker, topic creation, health
// endpoints, and a clean stop when the context is cancelled.
func TestRunEmbeddedServesHealthAndStopsCleanly(t *testing.T) {
	clearEnv(t)
	api := freePort(t)
	broker := freePort(t)
	cfg, err := Load(write(t, fmt.Sprintf(`
roles: [collector]
http: {listen: "%s"}
kafka: {embedded: {listen: "%s"}}
collector: {otlp: {grpc_listen: "", http_listen: ""}}
`, api, broker)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, telemetry.Discard(), 10*time.Second) }()

	var resp *http.Response
	for i := 0; i < 100; i++ {
		resp, err = http.Get("http://" + api + "/healthz")
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("healthz never answered: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	resp, err = http.Get("http://" + api + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if ready.Checks["kafka"] != "ok" {
		t.Fatalf("readyz: kafka check %+v", ready)
	}
	resp, err = http.Get("http://" + api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
}

func TestRunReportsPortInUse(t *testing.T) {
	clearEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg, err := Load(write(t, fmt.Sprintf(`
roles: [collector]
http: {listen: "%s"}
kafka: {embedded: {listen: "%s"}}
collector: {otlp: {grpc_listen: "", http_listen: ""}}
`, ln.Addr(), freePort(t))))
	if err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), cfg, telemetry.Discard(), time.Second)
	if err == nil || !strings.Contains(err.Error(), "http.listen") {
		t.Fatalf("want a clear http.listen error, got %v", err)
	}
}
