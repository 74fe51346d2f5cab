package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// privateClickHouse starts a ClickHouse server of this test's own (the shared
// one serves other tests running in parallel, so it must not be stopped),
// through the same script `make test` uses (it installs the engine when
// missing). It returns the native address and functions to stop and start
// it again.
func privateClickHouse(t *testing.T) (addr string, stop, start func()) {
	t.Helper()
	dir := t.TempDir()
	tcp, httpPort, inter := freePort(t), freePort(t), freePort(t)
	env := append(os.Environ(),
		"TOKENMETER_LOCAL_DIR="+dir,
		"CLICKHOUSE_LOCAL_PORT="+tcp, "CLICKHOUSE_LOCAL_HTTP_PORT="+httpPort, "CLICKHOUSE_LOCAL_INTERSERVER_PORT="+inter,
		"CLICKHOUSE_ADDR=", "CLICKHOUSE_HTTP_ADDR=")
	run := func(verb string) {
		cmd := exec.Command("../../deploy/local/clickhouse.sh", verb)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("clickhouse.sh %s: %v\n%s", verb, err, out)
		}
	}
	run("start")
	t.Cleanup(func() { run("stop") })
	return "127.0.0.1:" + tcp, func() { run("stop") }, func() { run("start") }
}

func freePort(t *testing.T) string {
	a := freeAddr(t)
	return a[strings.LastIndex(a, ":")+1:]
}

// TestPipelineSurvivesKillsAndClickHouseOutage is DESIGN.md invariant 2 under
// fire: 100,000 events with a known total cost flow through a collector, a
// processor and a sink (three OS processes on the real Kafka broker) while
// the processor and the sink are killed with SIGKILL at random moments, six
// times in all, and ClickHouse is stopped for a while and started again.
// After the pipeline drains, the raw table and every rollup hold exactly the
// expected counts and sums.
//
// Every event is the tm-small call of TestHTTPEventsReachClickHouseExactlyOnce,
// 0.00996 USD each (worked out there), so 100,000 events cost exactly 996 USD
// and, at 7.8 HKD per USD, 7768.8 HKD.
func TestPipelineSurvivesKillsAndClickHouseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("long failure test")
	}
	const (
		total     = 100_000
		batchSize = 1000
		workflows = 6
	)
	chAddr, chStop, chStart := privateClickHouse(t)
	db := "failure_" + strings.ReplaceAll(testenv.DatabaseName(t)[2:], "-", "_")
	t.Setenv("CLICKHOUSE_ADDR", chAddr)
	p := newPipeline(t, db, "")
	p.command("migrate", p.config)

	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	collector := p.startRole("collector", p.api)
	procAddr, sinkAddr := freeAddr(t), freeAddr(t)
	roles := map[string]*process{
		"processor": p.startRole("processor", procAddr),
		"sink":      p.startRole("sink", sinkAddr),
	}
	addrs := map[string]string{"processor": procAddr, "sink": sinkAddr}
	_ = collector

	// Load: 100 batches of 1000 events, each retried until the collector
	// answers 202 (only 503 is expected, when its buffer is full).
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	sendDone := make(chan error, 1)
	var sent atomic.Int64
	go func() {
		for b := 0; b < total/batchSize; b++ {
			var buf bytes.Buffer
			for i := b * batchSize; i < (b+1)*batchSize; i++ {
				ev := usageJSON(fmt.Sprintf("f-%06d", i), base.Add(time.Duration(i)*10*time.Millisecond), "tm-small")
				ev["workflow"] = fmt.Sprintf("wf-%d", i%workflows)
				line, _ := json.Marshal(ev)
				buf.Write(line)
				buf.WriteByte('\n')
			}
			body := buf.Bytes()
			for attempt := 0; ; attempt++ {
				req, _ := http.NewRequest(http.MethodPost, "http://"+p.api+"/v1/usage", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tenantToken)
				req.Header.Set("Content-Type", "application/x-ndjson")
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == 202 {
						sent.Add(batchSize)
						break
					}
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
				if attempt > 120 {
					sendDone <- fmt.Errorf("batch %d: %w", b, err)
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
		sendDone <- nil
	}()

	// Chaos: six SIGKILLs alternating processor and sink at random moments,
	// and one ClickHouse outage after the third kill.
	var mu sync.Mutex
	kills := 0
	for kills < 6 {
		time.Sleep(time.Duration(1500+rng.Intn(3000)) * time.Millisecond)
		name := []string{"processor", "sink"}[kills%2]
		mu.Lock()
		roles[name].kill()
		t.Logf("SIGKILL %s (kill %d) with %d events accepted so far", name, kills+1, sent.Load())
		roles[name] = p.startRoleNoWait(name, addrs[name])
		mu.Unlock()
		kills++
		if kills == 3 {
			t.Log("stopping ClickHouse")
			chStop()
			time.Sleep(time.Duration(5+rng.Intn(5)) * time.Second)
			t.Log("starting ClickHouse")
			chStart()
		}
	}
	if err := <-sendDone; err != nil {
		t.Fatalf("load: %v", err)
	}

	// A role that died on its own (it should not) is restarted so the
	// pipeline can drain; its log is printed if the test fails.
	for name, pr := range roles {
		if !pr.alive() {
			t.Logf("%s had exited by itself; restarting it", name)
			roles[name] = p.startRoleNoWait(name, addrs[name])
		}
	}

	conn, err := clickhouse.Open(chx.Options(chx.Config{Addr: chAddr, Username: "default", DialTimeout: 5 * time.Second}, db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wantUSD := decimal.RequireFromString("996")
	wantHKD := decimal.RequireFromString("7768.8")
	eventually(t, 5*time.Minute, func(ctx context.Context) error {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".priced_usage").Scan(&n); err != nil {
			return err
		}
		if n < total {
			return fmt.Errorf("priced_usage holds %d of %d rows", n, total)
		}
		return nil
	})
	// Let anything in flight land before the exact check.
	time.Sleep(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n, ids uint64
	var usd, hkd decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id), sum(effective_cost), sum(billed_effective_cost) FROM "+db+".priced_usage").
		Scan(&n, &ids, &usd, &hkd); err != nil {
		t.Fatal(err)
	}
	if n != total || ids != total || !usd.Equal(wantUSD) || !hkd.Equal(wantHKD) {
		t.Fatalf("priced_usage: %d rows, %d ids, %s USD, %s HKD; want %d, %d, %s, %s", n, ids, usd, hkd, total, total, wantUSD, wantHKD)
	}
	for _, rollup := range []string{"usage_minute", "usage_hourly", "usage_daily"} {
		var calls uint64
		var usd, hkd decimal.Decimal
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT sum(calls), sum(effective_cost), sum(billed_effective_cost) FROM %s.%s", db, rollup)).
			Scan(&calls, &usd, &hkd); err != nil {
			t.Fatal(err)
		}
		if calls != total || !usd.Equal(wantUSD) || !hkd.Equal(wantHKD) {
			t.Errorf("%s: %d calls, %s USD, %s HKD; want %d, %s, %s", rollup, calls, usd, hkd, total, wantUSD, wantHKD)
		}
	}
	var perWorkflow uint64
	if err := conn.QueryRow(ctx, "SELECT sum(calls) FROM "+db+".usage_daily WHERE workflow = 'wf-0'").Scan(&perWorkflow); err != nil {
		t.Fatal(err)
	}
	// wf-0 gets i%6 == 0: ceil(100000/6) = 16667 events.
	if perWorkflow != 16667 {
		t.Errorf("usage_daily wf-0: %d calls, want 16667", perWorkflow)
	}
}

// startRole runs `tokenmeter run` with one role and its own HTTP address and
// waits until it is ready.
func (p *pipeline) startRole(role, httpAddr string) *process {
	p.t.Helper()
	saved := p.api
	p.api = httpAddr
	defer func() { p.api = saved }()
	p.t.Setenv("TOKENMETER_HTTP_LISTEN", httpAddr)
	return p.start(role)
}

// startRoleNoWait restarts a role without waiting for readiness: during a
// ClickHouse outage the sink is rightly not ready.
func (p *pipeline) startRoleNoWait(role, httpAddr string) *process {
	p.t.Helper()
	cmd := exec.Command(binary, "run", p.config)
	cmd.Env = append(os.Environ(), "TOKENMETER_ROLES="+role, "TOKENMETER_HTTP_LISTEN="+httpAddr)
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
			p.t.Logf("%s log (tail):\n%s", role, tail(log.String(), 4000))
		}
	})
	return pr
}

func (pr *process) alive() bool {
	select {
	case err := <-pr.done:
		pr.done <- err
		return false
	default:
		return true
	}
}
