package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// usageJSON is one tm-small call: 1000 input tokens of which 200 cache reads,
// 500 output tokens of which 100 reasoning.
func usageJSON(id string, at time.Time, model string) map[string]any {
	return map[string]any{
		"event_id": id, "event_time": at.Format(time.RFC3339Nano),
		"provider": "testco", "model": model, "workflow": "claims-triage", "user_id": "u1",
		"input_tokens": 1000, "cache_read_input_tokens": 200,
		"output_tokens": 500, "reasoning_tokens": 100,
	}
}

// TestHTTPEventsReachClickHouseExactlyOnce is the walking skeleton: HTTP →
// collector → usage.v1 → processor → priced.v1 → sink → ClickHouse, on the
// real Kafka broker and ClickHouse server.
//
// Per event, by hand, from testdata/catalogue.yaml (USD per million tokens):
//
//	uncached input 1000-200 = 800 × 3.00  = 0.002400
//	cache reads          200 × 0.30       = 0.000060
//	output      500-100 = 400 × 15.00     = 0.006000
//	reasoning            100 × 15.00      = 0.001500 (reasoning defaults to the output price)
//	total                                  = 0.009960 USD
//
// 50 events: 0.498 USD; at 7.8 HKD per USD (testdata/fx.csv): 3.8844 HKD.
func TestHTTPEventsReachClickHouseExactlyOnce(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	p := newPipeline(t, db, "")
	out := p.command("migrate", p.config)
	if !strings.Contains(out, "001_baseline.sql") {
		t.Fatalf("migrate output: %s", out)
	}
	proc := p.start()

	base := time.Date(2026, 11, 15, 10, 0, 0, 0, time.UTC)
	var batch []map[string]any
	for i := 0; i < 50; i++ {
		batch = append(batch, usageJSON(fmt.Sprintf("e2e-%03d", i), base.Add(time.Duration(i)*time.Second), "tm-small"))
	}
	// A model with no price: accepted at the door, sent to the DLQ by the processor.
	batch = append(batch, usageJSON("e2e-unknown", base, "tm-unpriced"))
	// Inconsistent counts: rejected in the answer, by index, with the field.
	bad := usageJSON("e2e-bad", base, "tm-small")
	bad["reasoning_tokens"] = 501
	batch = append(batch, bad)
	body, _ := json.Marshal(batch)

	code, resp := p.post("/v1/usage", "application/json", body)
	if code != 202 {
		t.Fatalf("POST /v1/usage: %d %s", code, resp)
	}
	var ans struct {
		Accepted int `json:"accepted"`
		Rejected int `json:"rejected"`
		Errors   []struct {
			Index    int `json:"index"`
			Problems []struct {
				Field string `json:"field"`
			} `json:"problems"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(resp), &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Accepted != 51 || ans.Rejected != 1 || len(ans.Errors) != 1 || ans.Errors[0].Index != 51 ||
		len(ans.Errors[0].Problems) == 0 || ans.Errors[0].Problems[0].Field != "reasoning_tokens" {
		t.Fatalf("answer: %s", resp)
	}
	// The same batch again (a client retry): nothing may be counted twice.
	if code, resp := p.post("/v1/usage", "application/json", body); code != 202 {
		t.Fatalf("second POST: %d %s", code, resp)
	}

	wantUSD := decimal.RequireFromString("0.498")
	wantHKD := decimal.RequireFromString("3.8844")
	eventually(t, 90*time.Second, func(ctx context.Context) error {
		var n uint64
		var usd, hkd decimal.Decimal
		if err := conn.QueryRow(ctx, fmt.Sprintf(
			"SELECT count(), sum(effective_cost), sum(billed_effective_cost) FROM %s.priced_usage", db)).Scan(&n, &usd, &hkd); err != nil {
			return err
		}
		if n != 50 || !usd.Equal(wantUSD) || !hkd.Equal(wantHKD) {
			return fmt.Errorf("priced_usage: %d rows, %s USD, %s HKD; want 50, %s, %s", n, usd, hkd, wantUSD, wantHKD)
		}
		return nil
	})
	// Give a duplicate that slipped through time to show up, then check once more,
	// together with the rollup and the DLQ.
	time.Sleep(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n, distinct uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(), uniqExact(event_id) FROM %s.priced_usage", db)).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != 50 || distinct != 50 {
		t.Fatalf("after the duplicate batch: %d rows, %d distinct ids; want 50, 50", n, distinct)
	}
	var calls uint64
	var usd decimal.Decimal
	if err := conn.QueryRow(ctx, fmt.Sprintf(
		"SELECT sum(calls), sum(effective_cost) FROM %s.usage_daily WHERE workflow = 'claims-triage'", db)).Scan(&calls, &usd); err != nil {
		t.Fatal(err)
	}
	if calls != 50 || !usd.Equal(wantUSD) {
		t.Fatalf("usage_daily: %d calls, %s USD; want 50, %s", calls, usd, wantUSD)
	}
	eventually(t, 30*time.Second, func(ctx context.Context) error {
		// Each submission was rejected, so each is in the DLQ (the batch was sent twice).
		var n, other uint64
		if err := conn.QueryRow(ctx, fmt.Sprintf(
			"SELECT count(), countIf(reason != 'unknown_model') FROM %s.dlq WHERE event_id = 'e2e-unknown'", db)).Scan(&n, &other); err != nil {
			return err
		}
		if n != 2 || other != 0 {
			return fmt.Errorf("dlq: %d rows, %d with another reason; want 2 unknown_model", n, other)
		}
		return nil
	})
	proc.stop(t)
}
