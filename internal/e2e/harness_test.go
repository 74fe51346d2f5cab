// Package e2e runs the tokenmeter binary against the real services: Apache
// Kafka (KAFKA_BROKERS) and ClickHouse (CLICKHOUSE_ADDR), as `make test` starts
// them. Each test gets its own topics, consumer groups and database.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokenmeter-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tokenmeter")
	build := exec.Command("go", "build", "-o", binary, "./cmd/tokenmeter")
	build.Dir = "../.."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build tokenmeter:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const tenantToken = "e2e-token"

// pipeline is one test's configuration on the shared services.
type pipeline struct {
	t        *testing.T
	dir      string
	config   string
	api      string // host:port of the HTTP API
	database string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newPipeline writes a config for this test: its own topics, groups,
// transactional ids and database, the testdata catalogue, and extra YAML
// appended verbatim (for budgets and the like).
func newPipeline(t *testing.T, database, extra string) *pipeline {
	t.Helper()
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	dir := t.TempDir()
	abs, _ := filepath.Abs("testdata")
	p := &pipeline{t: t, dir: dir, api: freeAddr(t), database: database, config: filepath.Join(dir, "pipeline.yaml")}
	cfg := fmt.Sprintf(`
http: {listen: "%[1]s"}
kafka:
  brokers: [%[2]s]
  topics:
    usage: %[3]susage
    priced: %[3]spriced
    outcomes: %[3]soutcomes
    dlq: %[3]sdlq
    alerts: %[3]salerts
    partitions: 3
clickhouse: {addr: "%[4]s", database: %[5]s}
telemetry: {log_level: info}
tenants:
  - id: e2e
    reporting_currency: HKD
    time_zone: Asia/Hong_Kong
    token_sha256: ["%[6]s"]
pricing:
  catalogues: [%[7]s/catalogue.yaml]
  fx: %[7]s/fx.csv
collector:
  otlp: {grpc_listen: "", http_listen: ""}
processor:
  group: %[3]sprocessor
  transactional_id: %[3]sprocessor-txn
sink:
  group: %[3]ssink
  batch_age: 200ms
%[8]s`, p.api, strings.Join(brokers, ", "), prefix, testenv.ClickHouseAddr(t), database,
		sha256hex(tenantToken), abs, extra)
	if err := os.WriteFile(p.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// command runs a tokenmeter subcommand to completion and returns its output.
func (p *pipeline) command(args ...string) string {
	p.t.Helper()
	cmd := exec.Command(binary, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("tokenmeter %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// process is a running `tokenmeter run`.
type process struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan error
}

// start runs `tokenmeter run` with the given roles (all when empty) and waits
// until /readyz answers 200.
func (p *pipeline) start(roles ...string) *process {
	p.t.Helper()
	cmd := exec.Command(binary, "run", p.config)
	cmd.Env = os.Environ()
	if len(roles) > 0 {
		cmd.Env = append(cmd.Env, "TOKENMETER_ROLES="+strings.Join(roles, ","))
	}
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	pr := &process{cmd: cmd, log: log, done: make(chan error, 1)}
	go func() { pr.done <- cmd.Wait() }()
	p.t.Cleanup(func() {
		pr.kill()
		if p.t.Failed() {
			p.t.Logf("tokenmeter log (last 6000 bytes):\n%s", tail(log.String(), 6000))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-pr.done:
			p.t.Fatalf("tokenmeter run exited during start-up: %v\n%s", err, log)
		default:
		}
		resp, err := http.Get("http://" + p.api + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return pr
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.t.Fatalf("tokenmeter not ready within 60s\n%s", log)
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (pr *process) stop(t *testing.T) {
	t.Helper()
	_ = pr.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-pr.done:
		pr.done <- err
		if err != nil {
			t.Fatalf("tokenmeter exited with %v after SIGTERM\n%s", err, pr.log)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("tokenmeter did not stop within 60s of SIGTERM\n%s", pr.log)
	}
}

// kill sends SIGKILL: no drain, no clean shutdown.
func (pr *process) kill() {
	if pr.cmd.ProcessState != nil {
		return
	}
	_ = pr.cmd.Process.Kill()
	select {
	case err := <-pr.done:
		pr.done <- err
	case <-time.After(10 * time.Second):
	}
}

// post sends body to path with the tenant's token and returns status and body.
func (p *pipeline) post(path, contentType string, body []byte) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.api+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tenantToken)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// eventually polls fn until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, fn func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = fn(ctx)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("condition not met within %s: %v", timeout, err)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
