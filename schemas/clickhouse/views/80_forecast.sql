-- Forecast views (docs/forecast.md), repeatable: re-created by `tokenmeter migrate`
-- when they change. Their tables are in migration 030_forecast.sql.

-- Every version, newest first per tenant and year; is_current marks the one
-- in force (the latest approval of the year).
CREATE OR REPLACE VIEW {{db}}.v_forecast_versions{{onCluster}} AS
SELECT
    tenant, version_id, year, scenario, approved_by, approved_at, reporting_currency, total, note,
    approved_at = max(approved_at) OVER (PARTITION BY tenant, year) AS is_current
FROM {{db}}.forecast_versions FINAL;

-- The version in force, per workflow and month (sums of forecast_lines).
CREATE OR REPLACE VIEW {{db}}.v_forecast_approved{{onCluster}} AS
SELECT
    l.tenant AS tenant, l.version_id AS version_id, v.year AS year, v.scenario AS scenario,
    l.workflow AS workflow, l.month AS month, l.currency AS currency,
    sum(l.calls) AS calls, sum(l.cost) AS forecast, sum(l.outcomes) AS outcomes, sum(l.outcome_value) AS outcome_value
FROM {{db}}.forecast_lines AS l FINAL
INNER JOIN (SELECT tenant, version_id, year, scenario FROM {{db}}.v_forecast_versions WHERE is_current) AS v
    ON v.tenant = l.tenant AND v.version_id = l.version_id
GROUP BY tenant, version_id, year, scenario, workflow, month, currency;

-- Actual usage per workflow, model and month with tokens by class and cost in
-- both currencies: the variance bridge's and calibration's input.
CREATE OR REPLACE VIEW {{db}}.v_usage_model_month{{onCluster}} AS
SELECT
    tenant, workflow, provider, model, toStartOfMonth(local_date) AS month, pricing_currency, billing_currency,
    sum(calls) AS calls,
    sum(input_tokens) AS input_tokens, sum(cache_read_input_tokens) AS cache_read_input_tokens,
    sum(cache_write_input_tokens) AS cache_write_input_tokens, sum(output_tokens) AS output_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(effective_cost) AS effective_cost, sum(billed_effective_cost) AS spend,
    sum(billed_cache_savings) AS cache_savings
FROM {{db}}.usage_daily
GROUP BY tenant, workflow, provider, model, month, pricing_currency, billing_currency;

-- Re-forecast: the year of the version in force, each month's actual spend
-- where the month has ended (tenant_months.ends_at, the tenant's calendar)
-- and the approved forecast where it has not (a month the tenant calendar
-- does not hold yet counts as open). Workflows the version does not plan
-- are not in it: their spend shows in v_forecast_variance without a forecast.
CREATE OR REPLACE VIEW {{db}}.v_reforecast{{onCluster}} AS
SELECT
    f.tenant AS tenant, f.version_id AS version_id, f.year AS year, f.workflow AS workflow, f.month AS month,
    f.currency AS currency, f.forecast AS forecast, a.actual AS actual,
    tm.tenant != '' AND tm.ends_at <= now() AS closed,
    if(closed, 'actual', 'forecast') AS basis,
    if(closed, actual, forecast) AS amount
FROM {{db}}.v_forecast_approved AS f
LEFT JOIN
(
    SELECT tenant, workflow, toStartOfMonth(local_date) AS month, sum(billed_effective_cost) AS actual
    FROM {{db}}.usage_daily GROUP BY tenant, workflow, month
) AS a ON a.tenant = f.tenant AND a.workflow = f.workflow AND a.month = f.month
LEFT JOIN (SELECT tenant, month, ends_at FROM {{db}}.tenant_months FINAL) AS tm
    ON tm.tenant = f.tenant AND tm.month = f.month;
