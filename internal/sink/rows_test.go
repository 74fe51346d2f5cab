package sink

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/contract/pricedv1"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/money"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
	chschema "github.com/tokenmeter/tokenmeter/schemas/clickhouse"
)

// A record written before the binary contract (JSON, no local_date) gets
// its local date from the sink's tenant config, as it did then. 16:30 UTC
// on 31 March is 00:30 on 1 April in Hong Kong (UTC+8): April, Q2.
func TestLegacyRecordLocalDateInTenantZone(t *testing.T) {
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
			row, _, err := decodeBounded(tb, z, b)
			if err == nil && len(row) != len(tb.columns) {
				t.Fatalf("%s: %d values for %d columns", tb.name, len(row), len(tb.columns))
			}
		}
	})
}

// Issue 9: the priced record carries local_date, time_zone and the billing
// currency, so two sinks whose tenant configs disagree store the same row.
func TestPricedRowIsWhatTheRecordSaysWhateverTheSinkConfig(t *testing.T) {
	hk, err := tenant.NewRegistry([]tenant.Config{{ID: "acme", ReportingCurrency: "HKD", TimeZone: "Asia/Hong_Kong"}})
	if err != nil {
		t.Fatal(err)
	}
	ny, err := tenant.NewRegistry([]tenant.Config{{ID: "acme", ReportingCurrency: "USD", TimeZone: "America/New_York"}})
	if err != nil {
		t.Fatal(err)
	}
	// 16:30 UTC on 31 March: the processor said 1 April, Hong Kong.
	e := pricedEvent(1)
	e.EventTime = time.Date(2026, 3, 31, 16, 30, 0, 0, time.UTC)
	e.LocalDate, e.TimeZone = "2026-04-01", "Asia/Hong_Kong"
	raw := pricedValue(t, &e)
	a, splitA, err := decodePriced(&zoner{tenants: hk}, raw)
	if err != nil {
		t.Fatal(err)
	}
	b, splitB, err := decodePriced(&zoner{tenants: ny}, raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) || splitA != splitB {
		t.Fatalf("rows differ between sink configs:\n%v\n%v", a, b)
	}
	col := func(name string) any { return a[slices.Index(pricedTable.columns, name)] }
	if got := col("local_date").(time.Time).Format(time.DateOnly); got != "2026-04-01" || col("time_zone") != "Asia/Hong_Kong" || col("billing_currency") != "HKD" {
		t.Errorf("local_date %s zone %v currency %v, want 2026-04-01 Asia/Hong_Kong HKD", got, col("time_zone"), col("billing_currency"))
	}
	// 0.000001 USD × 7.8 = 0.0000078 HKD, as the record says.
	if got := col("billed_effective_cost").(decimal.Decimal).String(); got != "0.0000078" {
		t.Errorf("billed_effective_cost %s, want 0.0000078", got)
	}
	if splitA != 202603_202604 {
		t.Errorf("split %d, want 202603202604", splitA)
	}
}

// The priced_usage column list is the contract's fields in order
// (event_time filling event_time and event_time_ms) and every one of them is
// a column of the DDL with the type the sink writes; money is
// Decimal(38, money.Scale). A field added to the contract, or a column to
// the table, fails this until rows.go stores it.
func TestPricedColumnsFollowContractAndDDL(t *testing.T) {
	var fromContract []string
	fields := (&pricedv1.PricedUsage{}).ProtoReflect().Descriptor().Fields()
	moneyField := map[string]bool{}
	for i := range fields.Len() {
		f := fields.Get(i)
		name := string(f.Name())
		fromContract = append(fromContract, name)
		if name == "event_time" {
			fromContract = append(fromContract, "event_time_ms")
		}
		if f.Message() != nil && f.Message().Name() == "Money" {
			moneyField[name] = true
		}
	}
	if !slices.Equal(fromContract, pricedTable.columns) {
		t.Fatalf("rows.go columns\n%v\ncontract fields\n%v", pricedTable.columns, fromContract)
	}
	ddl := ddlColumns(t, "priced_usage")
	if len(ddl) < len(pricedTable.columns) {
		t.Fatalf("read %d columns of priced_usage from the DDL, the sink writes %d", len(ddl), len(pricedTable.columns))
	}
	for _, c := range pricedTable.columns {
		typ, ok := ddl[c]
		if !ok {
			t.Errorf("column %s is not in the priced_usage DDL", c)
			continue
		}
		if want := fmt.Sprintf("Decimal(38, %d)", money.Scale); moneyField[c] && typ != want {
			t.Errorf("%s is %s in the DDL, the contract carries %s", c, typ, want)
		}
	}
	for c := range ddl {
		if !slices.Contains(pricedTable.columns, c) && !slices.Contains(kafkaColumns, c) && c != "inserted_at" {
			t.Errorf("DDL column %s is filled by nothing in the contract", c)
		}
	}
}

// ddlColumns reads the column names and types of table from the
// migrations (CREATE TABLE and ALTER TABLE ... ADD COLUMN).
func ddlColumns(t *testing.T, table string) map[string]string {
	t.Helper()
	out := map[string]string{}
	files, err := fs.Glob(chschema.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	create := regexp.MustCompile(`(?s)CREATE TABLE IF NOT EXISTS \{\{db\}\}\.` + table + `\s*\((.*?)\n\)`)
	column := regexp.MustCompile(`^\s*([a-z_0-9]+)\s+(.+?)(?:\s+DEFAULT .*|\s+CODEC.*)?,?\s*$`)
	add := regexp.MustCompile(`ALTER TABLE \{\{db\}\}\.` + table + `\b[^;]*?ADD COLUMN IF NOT EXISTS\s+([a-z_0-9]+)\s+([^,;]+)`)
	for _, f := range files {
		b, err := fs.ReadFile(chschema.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range create.FindAllStringSubmatch(string(b), -1) {
			for _, line := range strings.Split(m[1], "\n") {
				if c := column.FindStringSubmatch(line); c != nil && !strings.HasPrefix(strings.TrimSpace(line), "--") {
					out[c[1]] = strings.TrimSuffix(strings.TrimSpace(c[2]), ",")
				}
			}
		}
		for _, m := range add.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = strings.TrimSpace(m[2])
		}
	}
	if len(out) == 0 {
		t.Fatalf("no CREATE TABLE for %s in schemas/clickhouse", table)
	}
	return out
}

// The native block's columns are priced_usage's, in the order the sink
// names them, with the DDL's types.
func TestPricedBlockColumnsAreTheTables(t *testing.T) {
	blk := newPricedBlock()
	want := append(append([]string{}, pricedTable.columns...), kafkaColumns...)
	ddl := ddlColumns(t, "priced_usage")
	if len(blk.Input()) != len(want) {
		t.Fatalf("%d block columns, want %d", len(blk.Input()), len(want))
	}
	for i, c := range blk.Input() {
		if c.Name != want[i] {
			t.Errorf("block column %d is %s, want %s", i, c.Name, want[i])
		}
		if got := string(c.Data.Type()); got != ddl[c.Name] {
			t.Errorf("%s: block type %s, DDL %s", c.Name, got, ddl[c.Name])
		}
	}
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
