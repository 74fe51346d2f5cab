package forecast

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/chx"
)

// Version is an approved forecast version.
type Version struct {
	Tenant, ID, Scenario, ApprovedBy, Note string
	Year                                   int
	ApprovedAt                             time.Time
	Currency                               string
	Total                                  decimal.Decimal
	Plan                                   *Plan // parsed from the stored YAML
}

// Approve stores the built forecast as a new version (tables
// forecast_versions, forecast_lines) and writes its amounts per workflow and
// month to `forecasts`, which v_forecast_variance compares actuals with.
// The version id is the plan's year, scenario and a hash of the plan text
// and approval time. Order: lines, then forecasts, then the version row, so
// a version is listed only once everything it names is stored; a failure
// before that leaves unlisted lines that a retry (new id) does not read.
func Approve(ctx context.Context, conn driver.Conn, db string, r *Result, who, note string, now time.Time) (*Version, error) {
	p := r.Plan
	if strings.TrimSpace(who) == "" {
		return nil, fmt.Errorf("approve: who approves is required")
	}
	now = now.UTC().Truncate(time.Millisecond)
	h := sha256.Sum256(append(append([]byte{}, p.raw...), []byte(now.Format(time.RFC3339Nano))...))
	v := &Version{Tenant: p.Tenant, ID: fmt.Sprintf("%d-%s-%s", p.Year, p.Scenario, hex.EncodeToString(h[:4])), Scenario: p.Scenario,
		ApprovedBy: who, Note: note, Year: p.Year, ApprovedAt: now, Currency: p.ReportingCurrency, Total: r.Total(), Plan: p}

	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".forecast_lines (tenant, version_id, workflow, team, provider, model, month, users, sessions, calls, input_tokens, cache_read_input_tokens, cache_write_input_tokens, output_tokens, reasoning_tokens, pricing_currency, cost_pricing, fx_rate, currency, cost, outcomes, outcome_value)")
	if err != nil {
		return nil, fmt.Errorf("approve: %w", err)
	}
	for _, l := range r.Lines {
		prov, model, _ := strings.Cut(l.Model, "/")
		if l.Model == DeniedModel {
			prov, model = "", DeniedModel
		}
		t := l.Tokens
		if err := b.Append(p.Tenant, v.ID, l.Workflow, l.Team, prov, model, monthDate(p.Year, l.Month),
			l.Users, l.Sessions, l.Calls, t.Input, t.CacheRead, t.CacheWrite, t.Output, t.Reasoning,
			l.Rates.Currency, l.CostPricing, l.FXRate, p.ReportingCurrency, l.Cost, l.Outcomes, l.Value); err != nil {
			return nil, fmt.Errorf("approve: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return nil, fmt.Errorf("approve: forecast_lines: %w", err)
	}
	var fs []chx.Forecast
	for _, row := range r.ByWorkflowMonth() {
		fs = append(fs, chx.Forecast{Tenant: p.Tenant, Workflow: row.Workflow, Month: monthDate(p.Year, row.Month), Amount: row.Cost, Currency: p.ReportingCurrency})
	}
	// Months a workflow has no forecast in (before its adoption starts) are
	// written as 0 so a previous version's figure does not linger.
	have := map[[2]any]bool{}
	for _, f := range fs {
		have[[2]any{f.Workflow, f.Month}] = true
	}
	for _, w := range p.Workflows {
		for m := Month(1); m <= 12; m++ {
			if !have[[2]any{w.Name, monthDate(p.Year, m)}] {
				fs = append(fs, chx.Forecast{Tenant: p.Tenant, Workflow: w.Name, Month: monthDate(p.Year, m), Amount: decimal.Zero, Currency: p.ReportingCurrency})
			}
		}
	}
	if err := chx.ImportForecasts(ctx, conn, db, fs, "forecast version "+v.ID, now); err != nil {
		return nil, fmt.Errorf("approve: %w", err)
	}
	vb, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".forecast_versions (tenant, version_id, year, scenario, approved_by, approved_at, reporting_currency, total, note, plan_yaml)")
	if err != nil {
		return nil, fmt.Errorf("approve: %w", err)
	}
	if err := vb.Append(p.Tenant, v.ID, uint16(p.Year), p.Scenario, who, now, p.ReportingCurrency, v.Total, note, string(p.raw)); err != nil {
		return nil, fmt.Errorf("approve: %w", err)
	}
	if err := vb.Send(); err != nil {
		return nil, fmt.Errorf("approve: forecast_versions: %w", err)
	}
	return v, nil
}

func monthDate(year int, m Month) time.Time {
	return time.Date(year, time.Month(m), 1, 0, 0, 0, 0, time.UTC)
}

// Versions lists a tenant's versions of a year, newest first.
func Versions(ctx context.Context, conn driver.Conn, db, tenant string, year int) ([]Version, error) {
	rows, err := conn.Query(ctx, "SELECT version_id, scenario, approved_by, approved_at, reporting_currency, total, note FROM "+db+
		".v_forecast_versions WHERE tenant = ? AND year = ? ORDER BY approved_at DESC", tenant, uint16(year))
	if err != nil {
		return nil, fmt.Errorf("forecast versions: %w", err)
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v := Version{Tenant: tenant, Year: year}
		if err := rows.Scan(&v.ID, &v.Scenario, &v.ApprovedBy, &v.ApprovedAt, &v.Currency, &v.Total, &v.Note); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Current loads the version in force for tenant and year with its plan, or
// nil when none was approved.
func Current(ctx context.Context, conn driver.Conn, db, tenant string, year int) (*Version, error) {
	rows, err := conn.Query(ctx, "SELECT v.version_id, v.scenario, v.approved_by, v.approved_at, v.reporting_currency, v.total, v.note, f.plan_yaml FROM "+db+
		".v_forecast_versions AS v INNER JOIN (SELECT version_id, plan_yaml FROM "+db+".forecast_versions FINAL WHERE tenant = ?) AS f ON f.version_id = v.version_id"+
		" WHERE v.tenant = ? AND v.year = ? AND v.is_current ORDER BY v.approved_at DESC LIMIT 1", tenant, tenant, uint16(year))
	if err != nil {
		return nil, fmt.Errorf("forecast version: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	v := &Version{Tenant: tenant, Year: year}
	var raw string
	if err := rows.Scan(&v.ID, &v.Scenario, &v.ApprovedBy, &v.ApprovedAt, &v.Currency, &v.Total, &v.Note, &raw); err != nil {
		return nil, err
	}
	p, err := Parse([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("forecast version %s: stored plan: %w", v.ID, err)
	}
	v.Plan = p
	return v, nil
}
