package sink

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// The tenant-local date decides the month and quarter of an event. 16:30 UTC
// on 31 March is 00:30 on 1 April in Hong Kong (UTC+8): April, Q2.
func TestLocalDateInTenantZone(t *testing.T) {
	reg, err := tenant.NewRegistry([]tenant.Config{{ID: "acme", ReportingCurrency: "HKD", TimeZone: "Asia/Hong_Kong"}, {ID: "utc", TimeZone: "UTC"}})
	if err != nil {
		t.Fatal(err)
	}
	z := &zoner{tenants: reg}
	for _, tc := range []struct {
		tenant, at, wantDate, wantZone string
	}{
		{"acme", "2026-03-31T16:30:00.250Z", "2026-04-01", "Asia/Hong_Kong"},
		{"acme", "2026-03-31T15:59:59Z", "2026-03-31", "Asia/Hong_Kong"},
		{"utc", "2026-03-31T16:30:00Z", "2026-03-31", "UTC"},
		{"unknown", "2026-03-31T23:59:59Z", "2026-03-31", "UTC"},
	} {
		at, _ := time.Parse(time.RFC3339Nano, tc.at)
		e := event.PricedUsageEvent{UsageEvent: event.UsageEvent{EventID: "e", EventTime: at, Tenant: tc.tenant, InputTokens: 5}}
		b, _ := json.Marshal(e)
		row, split, err := decodePriced(z, b)
		if err != nil {
			t.Fatal(err)
		}
		got := row[3].(time.Time).Format("2006-01-02")
		if got != tc.wantDate || row[4] != tc.wantZone {
			t.Errorf("%s at %s: local_date %s zone %v, want %s %s", tc.tenant, tc.at, got, row[4], tc.wantDate, tc.wantZone)
		}
		if tc.at == "2026-03-31T16:30:00.250Z" {
			// Split key: UTC month 202603, local month 202604.
			if split != 202603_202604 {
				t.Errorf("split = %d, want 202603202604", split)
			}
			if row[2] != uint16(250) {
				t.Errorf("event_time_ms = %v, want 250", row[2])
			}
		}
	}
}

func TestNegativeTokensRejected(t *testing.T) {
	e := event.PricedUsageEvent{UsageEvent: event.UsageEvent{EventID: "e", EventTime: time.Now(), Tenant: "acme", InputTokens: -1}}
	b, _ := json.Marshal(e)
	if _, _, err := decodePriced(&zoner{}, b); err == nil {
		t.Fatal("negative input_tokens accepted")
	}
}

// The decoders read whatever is on the topics: they must reject bad input
// with an error, never panic, and never produce a row of the wrong width.
func FuzzDecode(f *testing.F) {
	good, _ := json.Marshal(event.PricedUsageEvent{UsageEvent: event.UsageEvent{EventID: "e", EventTime: time.Unix(1700000000, 0), Tenant: "acme", InputTokens: 5}})
	f.Add(good)
	f.Add([]byte(`{"outcome_id":"o","tenant":"acme","count":-1}`))
	f.Add([]byte(`{"alert_id":"a","top":[{"kind":"workflow","spend":"1.5"}]}`))
	f.Add([]byte(`{"id":"d","original":"bm90IGpzb24="}`))
	f.Add([]byte(`{"event_id":"e","tenant":"t","event_time":"0001-01-01T00:00:00Z","fx_date":"x"}`))
	reg, _ := tenant.NewRegistry([]tenant.Config{{ID: "acme", ReportingCurrency: "HKD", TimeZone: "Asia/Hong_Kong"}})
	z := &zoner{tenants: reg}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tb := range []*table{pricedTable, outcomesTable, dlqTable, alertsTable} {
			row, _, err := tb.decode(z, b)
			if err == nil && len(row) != len(tb.columns) {
				t.Fatalf("%s: %d values for %d columns", tb.name, len(row), len(tb.columns))
			}
		}
	})
}

// The outcome dedupe key is found by column name, wherever the decoder
// puts the columns.
func TestOutcomeKeyColumns(t *testing.T) {
	if outcomeCols.id < 0 || outcomeCols.time < 0 || outcomeCols.tenant < 0 {
		t.Fatalf("outcomes table lacks a dedupe key column: %+v", outcomeCols)
	}
	at := time.Date(2026, 4, 2, 3, 4, 5, 0, time.UTC)
	vals := make([]any, len(outcomesTable.columns))
	vals[outcomeCols.id], vals[outcomeCols.time], vals[outcomeCols.tenant] = "o-1", at, "acme"
	k, ts := outcomeKeyOf(vals)
	if k != (outcomeKey{tenant: "acme", id: "o-1"}) || !ts.Equal(at) {
		t.Fatalf("outcomeKeyOf = %+v, %s", k, ts)
	}
}
