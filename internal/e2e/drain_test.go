package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// editConfig replaces old with new in the pipeline's config file.
func (p *pipeline) editConfig(old, new string) {
	p.t.Helper()
	b, err := os.ReadFile(p.config)
	if err != nil {
		p.t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		p.t.Fatalf("config has no %q", old)
	}
	if err := os.WriteFile(p.config, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// editConfigRe replaces the first match of the regular expression re.
func (p *pipeline) editConfigRe(re, new string) {
	p.t.Helper()
	b, err := os.ReadFile(p.config)
	if err != nil {
		p.t.Fatal(err)
	}
	rx := regexp.MustCompile(re)
	loc := rx.FindIndex(b)
	if loc == nil {
		p.t.Fatalf("config has no match for %s", re)
	}
	out := append(append(append([]byte{}, b[:loc[0]]...), new...), b[loc[1]:]...)
	if err := os.WriteFile(p.config, out, 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// postBatch sends events [from, to) as NDJSON and reports how many the
// collector acknowledged (202: all of them).
func (p *pipeline) postBatch(t *testing.T, prefix string, from, to int) int {
	t.Helper()
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	for i := from; i < to; i++ {
		line, _ := json.Marshal(usageJSON(fmt.Sprintf("%s-%06d", prefix, i), base.Add(time.Duration(i)*time.Second), "tm-small"))
		buf.Write(line)
		buf.WriteByte('\n')
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.api+"/v1/usage", &buf)
	req.Header.Set("Authorization", "Bearer "+tenantToken)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return 0
	}
	return to - from
}

// TestSIGTERMStoresEveryAcknowledgedEvent is the drain guarantee of
// docs/clickhouse.md: events are posted as fast as the collector takes them
// and the process gets SIGTERM right after the last 202; when it has exited,
// ClickHouse holds every acknowledged event exactly once, in the raw table
// and the rollups. The sink's batch age is an hour, so nothing reaches
// ClickHouse before the stop except by the drain itself.
func TestSIGTERMStoresEveryAcknowledgedEvent(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	p := newPipeline(t, db, "")
	p.editConfig("batch_age: 200ms", "batch_age: 1h")
	p.command("migrate", p.config)
	proc := p.start()
	accepted := 0
	for b := 0; b < 20; b++ {
		accepted += p.postBatch(t, "drain", b*500, (b+1)*500)
	}
	if accepted == 0 {
		t.Fatal("the collector acknowledged nothing")
	}
	proc.stop(t) // SIGTERM, and wait for a clean exit

	// tm-small costs 0.00996 USD per event (TestHTTPEventsReachClickHouseExactlyOnce).
	wantUSD := decimal.NewFromInt(int64(accepted)).Mul(decimal.RequireFromString("0.00996"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n, ids uint64
	var usd decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id), sum(effective_cost) FROM "+db+".priced_usage").Scan(&n, &ids, &usd); err != nil {
		t.Fatal(err)
	}
	if n != uint64(accepted) || ids != uint64(accepted) || !usd.Equal(wantUSD) {
		t.Fatalf("after SIGTERM: priced_usage %d rows, %d ids, %s USD; want every acknowledged event once: %d, %s USD\n%s",
			n, ids, usd, accepted, wantUSD, tail(proc.log.String(), 4000))
	}
	var calls uint64
	if err := conn.QueryRow(ctx, "SELECT sum(calls) FROM "+db+".usage_daily").Scan(&calls); err != nil {
		t.Fatal(err)
	}
	if calls != uint64(accepted) {
		t.Fatalf("usage_daily: %d calls, want %d", calls, accepted)
	}
}

// TestCollectorAcceptsWhileClickHouseDown: the whole pipeline (re)starts
// while ClickHouse is down. The collector accepts (Kafka holds the events),
// /readyz names ClickHouse as what the sink waits for, the process does not
// exit after startup_wait, and once ClickHouse is back the sink catches up.
func TestCollectorAcceptsWhileClickHouseDown(t *testing.T) {
	chAddr, chStop, chStart := privateClickHouse(t)
	db := "down_" + strings.ReplaceAll(testenv.DatabaseName(t)[2:], "-", "_")
	t.Setenv("CLICKHOUSE_ADDR", chAddr)
	p := newPipeline(t, db, "")
	p.editConfig("batch_age: 200ms", "batch_age: 200ms\n  startup_wait: 1s")
	p.command("migrate", p.config)
	chStop()

	proc := p.startRoleNoWait("collector,processor,sink", p.api)
	var checks map[string]string
	eventually(t, time.Minute, func(ctx context.Context) error {
		resp, err := http.Get("http://" + p.api + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			Ready  bool              `json:"ready"`
			Checks map[string]string `json:"checks"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusServiceUnavailable || body.Ready || !strings.Contains(body.Checks["sink"], "clickhouse") {
			return fmt.Errorf("readyz %d %+v; want 503 naming clickhouse for the sink", resp.StatusCode, body)
		}
		checks = body.Checks
		return nil
	})
	if checks["kafka"] != "ok" || checks["collector"] != "ok" {
		t.Errorf("readyz checks %v: want kafka and collector ok while only ClickHouse is missing", checks)
	}
	accepted := 0
	for b := 0; b < 4; b++ {
		accepted += p.postBatch(t, "down", b*250, (b+1)*250)
	}
	if accepted != 1000 {
		t.Fatalf("collector acknowledged %d of 1000 events while ClickHouse was down", accepted)
	}
	time.Sleep(3 * time.Second) // well past startup_wait (1s): the process must still run
	if !proc.alive() {
		t.Fatalf("tokenmeter exited while ClickHouse was down:\n%s", tail(proc.log.String(), 4000))
	}
	chStart()
	conn, err := clickhouse.Open(chx.Options(chx.Config{Addr: chAddr, Username: "default", DialTimeout: 5 * time.Second}, db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	eventually(t, 2*time.Minute, func(ctx context.Context) error {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".priced_usage").Scan(&n); err != nil {
			return err
		}
		if n != 1000 {
			return fmt.Errorf("priced_usage holds %d of 1000", n)
		}
		return nil
	})
	eventually(t, time.Minute, func(ctx context.Context) error {
		resp, err := http.Get("http://" + p.api + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d after ClickHouse came back", resp.StatusCode)
		}
		return nil
	})
	proc.stop(t)
}
