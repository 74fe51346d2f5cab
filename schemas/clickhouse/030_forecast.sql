-- 030_forecast: approved forecast versions (`tokenmeter forecast approve`),
-- their lines, and the views the board pack and analysts read beside
-- v_forecast_variance (docs/forecast.md). Numbered apart from the core
-- migrations. An approval also writes its monthly amounts per workflow to
-- `forecasts` (source 'forecast version <id>'), so v_forecast_variance
-- compares actuals with the latest approved version.

-- One row per approved version: who, when, which scenario, and the plan
-- itself (YAML) so the version can be re-priced exactly later (bridge).
CREATE TABLE IF NOT EXISTS {{db}}.forecast_versions
(
    tenant              String,
    version_id          String,
    year                UInt16,
    scenario            String,
    approved_by         String,
    approved_at         DateTime64(3, 'UTC'),
    reporting_currency  String,
    total               Decimal(38, 12),
    note                String,
    plan_yaml           String
)
ENGINE = ReplacingMergeTree(approved_at)
ORDER BY (tenant, version_id);

-- The version's forecast per workflow, model and month (the plan's month in
-- its time zone), with the drivers behind the cost.
CREATE TABLE IF NOT EXISTS {{db}}.forecast_lines
(
    tenant                   String,
    version_id               String,
    workflow                 String,
    team                     String,
    provider                 String,
    model                    String,
    month                    Date,
    users                    Decimal(38, 12),
    sessions                 Decimal(38, 12),
    calls                    Decimal(38, 12),
    input_tokens             Decimal(38, 12),
    cache_read_input_tokens  Decimal(38, 12),
    cache_write_input_tokens Decimal(38, 12),
    output_tokens            Decimal(38, 12),
    reasoning_tokens         Decimal(38, 12),
    pricing_currency         String,
    cost_pricing             Decimal(38, 12),
    fx_rate                  Decimal(38, 12),
    currency                 String,
    cost                     Decimal(38, 12),
    outcomes                 Decimal(38, 12),
    outcome_value            Decimal(38, 12)
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant, version_id, workflow, provider, model, month);

-- Every version, newest first per tenant and year; is_current marks the one
-- in force (the latest approval of the year).
CREATE OR REPLACE VIEW {{db}}.v_forecast_versions AS
SELECT
    tenant, version_id, year, scenario, approved_by, approved_at, reporting_currency, total, note,
    approved_at = max(approved_at) OVER (PARTITION BY tenant, year) AS is_current
FROM {{db}}.forecast_versions FINAL;

-- The version in force, per workflow and month (sums of forecast_lines).
CREATE OR REPLACE VIEW {{db}}.v_forecast_approved AS
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
CREATE OR REPLACE VIEW {{db}}.v_usage_model_month AS
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
CREATE OR REPLACE VIEW {{db}}.v_reforecast AS
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
