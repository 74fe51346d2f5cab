package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/chx"
)

func init() {
	register("verify", "check CONFIG's ClickHouse data: no Kafka record stored twice, offset ledger and rollups agree with the raw tables", verifyCmd)
	register("summary", "print a short summary read back from ClickHouse: events, DLQ, spend by workflow and model, outcomes, the CFO views", summaryCmd)
}

func summaryCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := chx.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	return writeSummary(ctx, os.Stdout, conn, cfg.ClickHouse.Database)
}

func verifyCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	conn, err := chx.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	checks, err := chx.Verify(ctx, conn, cfg.ClickHouse.Database)
	if err != nil {
		return err
	}
	failed := 0
	for _, c := range checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
			failed++
		}
		fmt.Printf("%s %s: %s\n", mark, c.Name, c.Detail)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed (docs/clickhouse.md, \"What this does not cover\")", failed, len(checks))
	}
	return nil
}

// money presents an exact amount rounded to cents (presentation only).
func money(d decimal.Decimal) string { return d.StringFixed(2) }

func writeSummary(ctx context.Context, out io.Writer, conn driver.Conn, db string) error {
	var events, dlq, outcomeRecs, alerts uint64
	var first, last time.Time
	q := func(query string, dest ...any) error {
		if err := conn.QueryRow(ctx, query).Scan(dest...); err != nil {
			return fmt.Errorf("summary: %w", err)
		}
		return nil
	}
	if err := q("SELECT count(), min(event_time), max(event_time) FROM "+db+".priced_usage", &events, &first, &last); err != nil {
		return err
	}
	if err := q("SELECT count() FROM "+db+".dlq", &dlq); err != nil {
		return err
	}
	if err := q("SELECT count() FROM "+db+".outcomes", &outcomeRecs); err != nil {
		return err
	}
	if err := q("SELECT count() FROM "+db+".alerts", &alerts); err != nil {
		return err
	}
	fmt.Fprintf(out, "tokenmeter summary (ClickHouse database %s)\n", db)
	fmt.Fprintf(out, "  priced events stored: %d", events)
	if events > 0 {
		fmt.Fprintf(out, " (%s .. %s UTC)", first.UTC().Format(time.DateTime), last.UTC().Format(time.DateTime))
	}
	fmt.Fprintf(out, "\n  dead-lettered: %d   outcome records: %d   budget alerts: %d\n", dlq, outcomeRecs, alerts)
	if err := writeQuality(ctx, out, conn, db); err != nil {
		return err
	}

	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
	section := func(title, query string, header string) error {
		rows, err := conn.Query(ctx, query)
		if err != nil {
			return fmt.Errorf("summary: %s: %w", title, err)
		}
		defer rows.Close()
		fmt.Fprintf(out, "\n%s\n", title)
		fmt.Fprintln(tw, header)
		for rows.Next() {
			var name, cur string
			var calls uint64
			var spend, usd decimal.Decimal
			if err := rows.Scan(&name, &cur, &calls, &spend, &usd); err != nil {
				return fmt.Errorf("summary: %s: %w", title, err)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s %s\t%s USD\t\n", name, calls, money(spend), cur, money(usd))
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return tw.Flush()
	}
	// Spend comes from the daily rollup (what month and quarter queries read).
	if err := section("Spend by workflow (reporting currency; all time)",
		"SELECT workflow, billing_currency, sum(calls) AS c, sum(billed_effective_cost) AS s, sum(effective_cost) FROM "+db+".usage_daily GROUP BY workflow, billing_currency ORDER BY s DESC",
		"workflow\tcalls\tspend (reporting)\tspend (pricing)\t"); err != nil {
		return err
	}
	if err := section("Spend by model",
		"SELECT concat(provider, '/', model), billing_currency, sum(calls) AS c, sum(billed_effective_cost) AS s, sum(effective_cost) FROM "+db+".usage_daily GROUP BY provider, model, billing_currency ORDER BY s DESC",
		"model\tcalls\tspend (reporting)\tspend (pricing)\t"); err != nil {
		return err
	}

	// Values in the reporting currency, converted as the CFO views convert them.
	rows, err := conn.Query(ctx, "SELECT workflow, types, outcomes, value, billing_currency FROM"+
		" (SELECT workflow, sum(outcomes) AS outcomes, sum(outcome_value) AS value, any(billing_currency) AS billing_currency FROM "+db+".v_outcome_value_monthly GROUP BY workflow) AS v"+
		" ANY LEFT JOIN (SELECT workflow, arrayStringConcat(groupUniqArray(outcome_type), ', ') AS types FROM "+db+".outcomes_daily GROUP BY workflow) AS t USING workflow"+
		" ORDER BY workflow")
	if err != nil {
		return fmt.Errorf("summary: outcomes: %w", err)
	}
	fmt.Fprintf(out, "\nOutcomes\n")
	fmt.Fprintln(tw, "workflow\toutcome\tcount\tvalue\t")
	for rows.Next() {
		var wf, typ, cur string
		var n uint64
		var v decimal.Decimal
		if err := rows.Scan(&wf, &typ, &n, &v, &cur); err != nil {
			rows.Close()
			return fmt.Errorf("summary: outcomes: %w", err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s %s\t\n", wf, typ, n, money(v), cur)
	}
	rows.Close()
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nCFO views (latest period with data; months and quarters in the tenant time zone)\n")
	for _, line := range cfoLines(ctx, conn, db) {
		fmt.Fprintf(out, "  %s\n", line)
	}
	return nil
}

// cfoLines answers each CFO view in one line, for the latest period with
// data. A view that cannot answer says so instead of failing the summary.
func cfoLines(ctx context.Context, conn driver.Conn, db string) []string {
	var lines []string
	ask := func(label, query string, format func(vals []string) string) {
		rows, err := conn.Query(ctx, query)
		if err != nil {
			lines = append(lines, label+": unavailable: "+err.Error())
			return
		}
		defer rows.Close()
		var parts []string
		for rows.Next() {
			vals := make([]string, len(rows.Columns()))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				lines = append(lines, label+": unavailable: "+err.Error())
				return
			}
			parts = append(parts, format(vals))
		}
		if len(parts) == 0 {
			parts = []string{"no data yet"}
		}
		lines = append(lines, label+": "+strings.Join(parts, "; "))
	}
	m := func(v string) string { // money, rounded for display
		d, err := decimal.NewFromString(v)
		if err != nil {
			return v
		}
		return money(d)
	}
	ask("1 cost per outcome (latest quarter, highest first)",
		"SELECT workflow, toString(period_start), toString(cost_per_outcome), billing_currency, toString(outcomes) FROM "+db+".v_cost_per_outcome "+
			"WHERE period = 'quarter' AND period_start = (SELECT max(period_start) FROM "+db+".v_cost_per_outcome WHERE period = 'quarter' AND outcomes > 0) AND outcomes > 0 ORDER BY cost_per_outcome DESC",
		func(v []string) string {
			return fmt.Sprintf("%s %s %s over %s outcomes (%s)", v[0], m(v[2]), v[3], v[4], v[1])
		})
	ask("2 forecast variance (latest forecast month)",
		"SELECT toString(month), toString(sum(actual)), toString(sum(forecast)), any(currency) FROM "+db+".v_forecast_variance "+
			"WHERE has_forecast = 1 AND month = (SELECT max(month) FROM "+db+".v_forecast_variance WHERE has_forecast = 1 AND actual > 0) GROUP BY month",
		func(v []string) string {
			a, f := decimal.RequireFromString(v[1]), decimal.RequireFromString(v[2])
			pct := "n/a"
			if !f.IsZero() {
				pct = a.Sub(f).Mul(decimal.NewFromInt(100)).Div(f).StringFixed(1) + "%"
			}
			return fmt.Sprintf("%s actual %s vs forecast %s %s (%s)", v[0][:7], money(a), money(f), v[3], pct)
		})
	ask("3 profitability (latest quarter, ROI)",
		"SELECT workflow, toString(net_value), billing_currency, ifNull(toString(roi), 'n/a') FROM "+db+".v_workflow_profitability "+
			"WHERE period = 'quarter' AND period_start = (SELECT max(period_start) FROM "+db+".v_workflow_profitability WHERE period = 'quarter') AND outcomes > 0 ORDER BY roi DESC",
		func(v []string) string {
			roi := v[3]
			if d, err := decimal.NewFromString(roi); err == nil {
				roi = d.Mul(decimal.NewFromInt(100)).StringFixed(0) + "%"
			}
			return fmt.Sprintf("%s net %s %s, ROI %s", v[0], m(v[1]), v[2], roi)
		})
	ask("4 optimisation rate (cost per outcome vs previous quarter)",
		"SELECT workflow, toString(quarter), ifNull(toString(change_pct), 'n/a') FROM "+db+".v_optimisation_rate "+
			"WHERE quarter = (SELECT max(quarter) FROM "+db+".v_optimisation_rate) AND cost_per_outcome IS NOT NULL ORDER BY workflow",
		func(v []string) string {
			if d, err := decimal.NewFromString(v[2]); err == nil {
				return fmt.Sprintf("%s %s%%", v[0], d.StringFixed(1))
			}
			return v[0] + " n/a (no previous quarter)"
		})
	ask("5 budget compliance",
		"SELECT toString(period_start), status, toString(budgets_within), toString(budgets), arrayStringConcat(over_budget, ',') FROM "+db+".v_budget_compliance "+
			"WHERE period = 'month' ORDER BY period_start DESC LIMIT 2",
		func(v []string) string {
			over := ""
			if v[4] != "" {
				over = ", over: " + v[4]
			}
			return fmt.Sprintf("%s (%s) %s of %s budgets within%s", v[0][:7], v[1], v[2], v[3], over)
		})
	ask("cache savings (latest month)",
		"SELECT toString(month), toString(sum(cache_savings)), any(billing_currency) FROM "+db+".v_cache_savings "+
			"WHERE month = (SELECT max(month) FROM "+db+".v_cache_savings) GROUP BY month",
		func(v []string) string { return fmt.Sprintf("%s saved %s %s", v[0][:7], m(v[1]), v[2]) })
	ask("unattributed share (latest month)",
		"SELECT toString(month), ifNull(toString(unattributed_workflow_pct), 'n/a') FROM "+db+".v_unattributed_share "+
			"WHERE month = (SELECT max(month) FROM "+db+".v_unattributed_share)",
		func(v []string) string {
			if d, err := decimal.NewFromString(v[1]); err == nil {
				return fmt.Sprintf("%s %s%% of spend has no workflow", v[0][:7], d.StringFixed(2))
			}
			return v[0][:7] + " n/a"
		})
	return lines
}

// writeQuality says how far the figures can be trusted: calls whose usage
// the source did not fully report (cost an upper or lower bound, or unknown),
// events priced with a stale FX rate, and what was dead-lettered where and
// why (OTLP partial-success rejections included: exporters rarely show them).
func writeQuality(ctx context.Context, out io.Writer, conn driver.Conn, db string) error {
	var exact, upper, lower, unmetered, staleFX uint64
	var upperCost decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT countIf(usage_completeness IN ('', 'complete')),"+
		" countIf(usage_completeness IN ('cache_unreported', 'output_overcounted')),"+
		" countIf(usage_completeness = 'cache_omitted'), countIf(usage_completeness = 'usage_missing'),"+
		" sumIf(effective_cost, usage_completeness IN ('cache_unreported', 'output_overcounted')), countIf(fx_stale = 1)"+
		" FROM "+db+".priced_usage").Scan(&exact, &upper, &lower, &unmetered, &upperCost, &staleFX); err != nil {
		return fmt.Errorf("summary: usage completeness: %w", err)
	}
	fmt.Fprintf(out, "  usage completeness: %d exact, %d upper bound (%s USD at most), %d lower bound, %d unmetered (no usage: cost unknown, not 0)\n",
		exact, upper, money(upperCost), lower, unmetered)
	if staleFX > 0 {
		fmt.Fprintf(out, "  WARNING: %d event(s) priced with a stale FX rate (older than pricing.fx_max_age): update the rates file and reprice\n", staleFX)
	}
	rows, err := conn.Query(ctx, "SELECT stage, reason, count() AS n FROM "+db+".dlq GROUP BY stage, reason ORDER BY n DESC, stage, reason LIMIT 10")
	if err != nil {
		return fmt.Errorf("summary: dlq reasons: %w", err)
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var stage, reason string
		var n uint64
		if err := rows.Scan(&stage, &reason, &n); err != nil {
			return fmt.Errorf("summary: dlq reasons: %w", err)
		}
		parts = append(parts, fmt.Sprintf("%s/%s %d", stage, reason, n))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(parts) > 0 {
		fmt.Fprintf(out, "  dead-lettered by stage/reason: %s (collector/*: OTLP spans rejected in a partial success)\n", strings.Join(parts, ", "))
	}
	return nil
}
