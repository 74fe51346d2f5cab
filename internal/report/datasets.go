package report

import (
	"fmt"

	"github.com/tokenmeter/tokenmeter/internal/chx"
)

// Dataset is one of the pack's tables as a query for `tokenmeter export`
// (CSV and Parquet for BI tools): the same views, the same filters.
type Dataset struct {
	Name  string
	Query string
}

// Datasets are the pack's tables for tenant and the period's year (months
// up to the period's end).
func Datasets(db, tenant string, p Period) []Dataset {
	t := chx.QuoteString(tenant)
	y := p.Year
	upTo := fmt.Sprintf("'%s-01'", p.MonthLabel(p.LastMonth))
	f := func(name, sql string, a ...any) Dataset { return Dataset{Name: name, Query: fmt.Sprintf(sql, a...)} }
	return []Dataset{
		f("workflow_months", "SELECT * FROM %s.v_workflow_profitability WHERE tenant = %s AND period = 'month' AND toYear(period_start) = %d AND period_start <= %s ORDER BY workflow, period_start", db, t, y, upTo),
		f("cost_per_outcome", "SELECT * FROM %s.v_cost_per_outcome WHERE tenant = %s AND period = 'month' AND toYear(period_start) = %d AND period_start <= %s ORDER BY workflow, period_start", db, t, y, upTo),
		f("forecast_variance", "SELECT * FROM %s.v_forecast_variance WHERE tenant = %s AND toYear(month) = %d ORDER BY workflow, month", db, t, y),
		f("reforecast", "SELECT * FROM %s.v_reforecast WHERE tenant = %s AND year = %d ORDER BY workflow, month", db, t, y),
		f("optimisation_rate", "SELECT * FROM %s.v_optimisation_rate WHERE tenant = %s AND toYear(quarter) = %d ORDER BY workflow, quarter", db, t, y),
		f("budget_compliance", "SELECT tenant, period, period_start, status, budgets, budgets_within, share_within, workflow_budgets, workflow_budgets_within, workflow_share_within, arrayStringConcat(over_budget, ',') AS over_budget FROM %s.v_budget_compliance WHERE tenant = %s AND toYear(period_start) = %d ORDER BY period, period_start", db, t, y),
		f("cache_savings", "SELECT * FROM %s.v_cache_savings WHERE tenant = %s AND toYear(month) = %d ORDER BY workflow, provider, model, month", db, t, y),
		f("usage_model_month", "SELECT * FROM %s.v_usage_model_month WHERE tenant = %s AND toYear(month) = %d ORDER BY workflow, provider, model, month", db, t, y),
		f("unattributed_share", "SELECT * FROM %s.v_unattributed_share WHERE tenant = %s AND toYear(month) = %d ORDER BY month", db, t, y),
	}
}
