package chx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/export"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// docQuery is one SQL statement from the docs or a dashboard.
type docQuery struct {
	Source string `json:"source"`
	SQL    string `json:"sql"`
}

var sqlBlock = regexp.MustCompile("(?s)```sql\n(.*?)```")

// docQueries extracts every statement of every ```sql block of the files.
func docQueries(t *testing.T, files ...string) []docQuery {
	t.Helper()
	var out []docQuery
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range sqlBlock.FindAllStringSubmatch(string(b), -1) {
			for j, st := range chx.SplitStatements(m[1]) {
				out = append(out, docQuery{Source: fmt.Sprintf("%s sql block %d statement %d", f, i+1, j+1), SQL: st})
			}
		}
	}
	return out
}

// grafanaMacros substitutes the Grafana ClickHouse data source's macros
// for a fixed time range, as the plugin does.
func grafanaMacros(sql string, from, to time.Time) string {
	f, tt := fmt.Sprintf("toDateTime(%d)", from.Unix()), fmt.Sprintf("toDateTime(%d)", to.Unix())
	sql = regexp.MustCompile(`\$__timeFilter\(([^)]+)\)`).ReplaceAllString(sql, "$1 >= "+f+" AND $1 <= "+tt)
	sql = regexp.MustCompile(`\$__timeInterval\(([^)]+)\)`).ReplaceAllString(sql, "toStartOfInterval($1, INTERVAL 60 second)")
	return strings.NewReplacer("$__fromTime", f, "$__toTime", tt, "$__interval_s", "60").Replace(sql)
}

// dashboardQueries are the SQL of every panel of deploy/grafana/dashboards.
func dashboardQueries(t *testing.T, from, to time.Time) []docQuery {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "deploy", "grafana", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	var out []docQuery
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					RawSQL string `json:"rawSql"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if tg.RawSQL != "" {
					out = append(out, docQuery{Source: "grafana " + filepath.Base(f) + ": " + p.Title, SQL: grafanaMacros(tg.RawSQL, from, to)})
				}
			}
		}
	}
	return out
}

// biDataset writes tenant acme's (HKD, Asia/Hong_Kong) October and November
// 2026, the months the docs' examples ask about:
//
//	u1 support-copilot 2026-11-27 03:00Z m-a  12 HKD  trace tr1
//	u2 support-copilot 2026-11-27 05:00Z m-b   8 HKD  trace tr2
//	u3 legal           2026-11-10 03:00Z m-a  30 HKD
//	u4 support-copilot 2026-10-15 03:00Z m-a  20 HKD
//	o1 support-copilot 2026-11-27 x2 worth 50 HKD (trace tr1); o2 2026-10-16 x4 worth 60
//	forecast support-copilot 2026-11: 15 HKD; budget support-copilot 25 HKD a month
func biDataset(t *testing.T) chx.Config {
	conn, cfg := migrated(t)
	db := cfg.Database
	ctx := context.Background()
	at := func(s string) time.Time { tt, _ := time.Parse(time.RFC3339, s); return tt }
	insertUsage(t, conn, db, []usage{
		{id: "u1", wf: "support-copilot", team: "cx", model: "m-a", prompt: "tpl", version: "v1", task: "t1", trace: "tr1", at: at("2026-11-27T03:00:00Z"), local: "2026-11-27", cost: "12", input: 1000, cacheRead: 400, cacheSavings: "2"},
		{id: "u2", wf: "support-copilot", team: "cx", model: "m-b", prompt: "tpl", version: "v2", task: "t2", trace: "tr2", at: at("2026-11-27T05:00:00Z"), local: "2026-11-27", cost: "8", input: 100},
		{id: "u3", wf: "legal", team: "legal", model: "m-a", prompt: "tpl", version: "v1", task: "t3", at: at("2026-11-10T03:00:00Z"), local: "2026-11-10", cost: "30", input: 100},
		{id: "u4", wf: "support-copilot", team: "cx", model: "m-a", prompt: "tpl", version: "v1", task: "t4", at: at("2026-10-15T03:00:00Z"), local: "2026-10-15", cost: "20", input: 100},
	})
	insertOutcomes(t, conn, db, []outcome{
		{id: "o1", wf: "support-copilot", trace: "tr1", at: at("2026-11-27T06:00:00Z"), local: "2026-11-27", count: 2, value: "50"},
		{id: "o2", wf: "support-copilot", at: at("2026-10-16T02:00:00Z"), local: "2026-10-16", count: 4, value: "60"},
	})
	hk, _ := time.LoadLocation("Asia/Hong_Kong")
	now := time.Now()
	if err := chx.SyncTenants(ctx, conn, db, []chx.TenantRef{{ID: "acme", TimeZone: hk, ReportingCurrency: "HKD"}}, now); err != nil {
		t.Fatal(err)
	}
	if err := chx.SyncBudgets(ctx, conn, db, []chx.BudgetRef{{ID: "b-sc", Tenant: "acme", Workflow: "support-copilot", Period: "month", Amount: decimal.RequireFromString("25"), Unit: "currency", Mode: "alert"}}, now); err != nil {
		t.Fatal(err)
	}
	fc, err := chx.ParseForecasts(strings.NewReader("tenant,workflow,month,amount,currency\nacme,support-copilot,2026-11,15,HKD\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := chx.ImportForecasts(ctx, conn, db, fc, "bi.csv", now); err != nil {
		t.Fatal(err)
	}
	return cfg
}

type biResult struct {
	Source  string      `json:"source"`
	Columns []string    `json:"columns"`
	Rows    [][]*string `json:"rows"`
	Error   string      `json:"error"`
}

// TestBIDriverRunsTheDocumentedQueries connects as the read-only user with
// clickhouse-connect (the official Python driver, Superset's) over HTTP and
// runs every example query of README.md and docs/clickhouse.md, taken from
// their ```sql blocks, and every Grafana panel's SQL, on a dataset whose
// answers are computed by hand.
func TestBIDriverRunsTheDocumentedQueries(t *testing.T) {
	py := testenv.Python(t, "bi")
	cfg := biDataset(t)
	db := cfg.Database

	inDB := regexp.MustCompile(`\btokenmeter\.`)
	var queries []docQuery
	var admin []string
	for _, q := range docQueries(t, "README.md", "docs/clickhouse.md") {
		switch {
		case regexp.MustCompile(`(?i)^(CREATE USER|GRANT|ALTER USER)\b`).MatchString(q.SQL):
			admin = append(admin, q.Source) // for the administrator, not the reader
			continue
		case !regexp.MustCompile(`(?i)^(SELECT|WITH)\b`).MatchString(q.SQL):
			t.Errorf("%s is neither a query nor user administration: %s", q.Source, q.SQL)
			continue
		}
		q.SQL = inDB.ReplaceAllString(q.SQL, db+".")
		queries = append(queries, q)
	}
	if len(queries) < 15 || len(admin) == 0 {
		t.Fatalf("found %d example queries and %d user statements in the docs; the extraction is broken", len(queries), len(admin))
	}
	from, to := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, q := range dashboardQueries(t, from, to) {
		q.SQL = inDB.ReplaceAllString(q.SQL, db+".")
		queries = append(queries, q)
	}

	host, port, err := net.SplitHostPort(testenv.ClickHouseHTTPAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	user, password := testenv.ClickHouseReader()
	req, _ := json.Marshal(map[string]any{
		"host": host, "port": port, "user": user, "password": password, "database": db,
		"queries": queries, "write_probe": "CREATE TABLE " + db + ".reader_was_here (a Int8) ENGINE = Memory",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, filepath.Join("..", "..", "tests", "python", "bi", "run_queries.py"))
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run_queries.py: %v\n%s", err, stderr.String())
	}
	var res struct {
		ServerVersion   string     `json:"server_version"`
		Results         []biResult `json:"results"`
		WriteProbeError *string    `json:"write_probe_error"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("run_queries.py output: %v\n%s", err, out)
	}
	t.Logf("clickhouse-connect as %s, server %s: %d queries", user, res.ServerVersion, len(res.Results))
	if res.WriteProbeError == nil {
		t.Errorf("%s could CREATE TABLE: it must be read-only", user)
	}
	bySQL := map[string][][]string{}
	for i, r := range res.Results {
		if r.Error != "" {
			t.Errorf("%s failed through clickhouse-connect: %s\n%s", r.Source, r.Error, queries[i].SQL)
			continue
		}
		var rows [][]string
		for _, row := range r.Rows {
			var vals []string
			for _, v := range row {
				if v == nil {
					vals = append(vals, "NULL")
				} else {
					vals = append(vals, *v)
				}
			}
			rows = append(rows, vals)
		}
		bySQL[queries[i].SQL] = rows
	}
	find := func(substr string) [][]string {
		t.Helper()
		for sql, rows := range bySQL {
			if strings.Contains(sql, substr) {
				return rows
			}
		}
		t.Fatalf("no documented query contains %q", substr)
		return nil
	}
	// support-copilot: October 20 HKD for 4 outcomes = 5; November 12 + 8 = 20 for 2 = 10.
	// legal November: 30 and no outcomes.
	expectRows(t, "docs: cost per outcome by month", find("period = 'month' AND period_start >= '2026-07-01'"),
		[]string{"legal", "2026-11-01", "30", "0", "NULL"},
		[]string{"support-copilot", "2026-10-01", "20", "4", "5"},
		[]string{"support-copilot", "2026-11-01", "20", "2", "10"})
	// o1 names trace tr1: u1's 12 HKD for 2 outcomes = 6 each.
	expectRows(t, "docs: exact cost of an outcome", find("FROM "+db+".v_outcome_cost"),
		[]string{"o1", "trace:tr1", "1", "12", "6"})
	// November support-copilot: 20 against 15 forecast = +5 = 33.333333333333%.
	expectRows(t, "docs: forecast variance", find("FROM "+db+".v_forecast_variance"),
		[]string{"support-copilot", "20", "15", "5", "33.333333333333"})
	// Q4: support-copilot 40 HKD, 6 outcomes worth 110: 6.666666666666 and 18.333333333333
	// per outcome, net 70, ROI 70 / 40 = 1.75; legal 30 HKD and nothing: net -30, ROI -1.
	expectRows(t, "docs: workflow profitability", find("FROM "+db+".v_workflow_profitability"),
		[]string{"support-copilot", "6.666666666666", "18.333333333333", "70", "1.75"},
		[]string{"legal", "NULL", "NULL", "-30", "-1"})
	// FOCUS, November: m-a = u1 12 + u3 30 = 42, m-b = u2 8.
	focus := find("FROM " + db + ".v_focus_usage")
	sort.Slice(focus, func(i, j int) bool { return focus[i][0] < focus[j][0] })
	expectRows(t, "docs: FOCUS billed cost by service", focus, []string{"m-a", "42"}, []string{"m-b", "8"})
	// The per-minute dashboard panel over October and November: all four calls, 70 HKD.
	var total decimal.Decimal
	for _, r := range find("FROM " + db + ".usage_minute") {
		total = total.Add(decimal.RequireFromString(r[2]))
	}
	if !total.Equal(decimal.NewFromInt(70)) {
		t.Errorf("grafana spend per minute sums to %s, want 70", total)
	}
}

// TestExportReadsEveryView: `tokenmeter export` (internal/export) writes
// every analyst view of the CFO metrics, NULLs included, on the same dataset.
func TestExportReadsEveryView(t *testing.T) {
	cfg := biDataset(t)
	user, password := testenv.ClickHouseUser()
	conn, err := chx.Open(context.Background(), chx.Config{Addr: testenv.ClickHouseAddr(t), Username: user, Password: password, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	views, err := chx.Views()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		// The analyst views of this schema (views/10_…–50_…). The lever,
		// procurement and forecast views (60_… on) are their packages' to
		// test: this dataset has none of their data, and
		// v_bill_reconciliation's Array(Decimal) is not exportable yet.
		if v.File >= "60" {
			continue
		}
		for _, format := range []string{export.FormatCSV, export.FormatParquet} {
			var buf bytes.Buffer
			n, err := export.Write(context.Background(), conn, "SELECT * FROM "+cfg.Database+"."+v.Name, format, &buf)
			if err != nil {
				t.Errorf("export %s as %s: %v", v.Name, format, err)
				continue
			}
			if n == 0 {
				t.Errorf("export %s as %s: no rows", v.Name, format)
			}
		}
	}
	// A NULL is an empty CSV field: legal's November cost per outcome.
	var buf bytes.Buffer
	if _, err := export.Write(context.Background(), conn, "SELECT workflow, cost_per_outcome FROM "+cfg.Database+".v_cost_per_outcome WHERE period = 'month' AND period_start = '2026-11-01' ORDER BY workflow", export.FormatCSV, &buf); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "workflow,cost_per_outcome\nlegal,\nsupport-copilot,10.000000000000\n"; got != want {
		t.Errorf("CSV:\n%s\nwant\n%s", got, want)
	}
}
