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
		"workflow\tcalls\tspend\tspend\t"); err != nil {
		return err
	}
	if err := section("Spend by model",
		"SELECT concat(provider, '/', model), billing_currency, sum(calls) AS c, sum(billed_effective_cost) AS s, sum(effective_cost) FROM "+db+".usage_daily GROUP BY provider, model, billing_currency ORDER BY s DESC",
		"model\tcalls\tspend\tspend\t"); err != nil {
		return err
	}

	rows, err := conn.Query(ctx, "SELECT workflow, outcome_type, sum(outcomes), sum(value_billed), any(billing_currency) FROM "+db+".outcomes_daily GROUP BY workflow, outcome_type ORDER BY workflow, outcome_type")
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
	fmt.Fprintf(out, "\nCFO views (current quarter/month in each tenant's time zone)\n")
	for _, line := range cfoLines(ctx, conn, db) {
		fmt.Fprintf(out, "  %s\n", line)
	}
	return nil
}

// cfoLines answers each CFO view in one line. A view that cannot answer
// (no data yet) says so instead of failing the summary.
func cfoLines(ctx context.Context, conn driver.Conn, db string) []string {
	var lines []string
	one := func(label, query string, format func(driver.Row) (string, error)) {
		s, err := format(conn.QueryRow(ctx, query))
		if err != nil {
			if strings.Contains(err.Error(), "no rows") {
				s = "no data yet"
			} else {
				s = "unavailable: " + err.Error()
			}
		}
		lines = append(lines, label+": "+s)
	}
	_ = one
	return lines
}
