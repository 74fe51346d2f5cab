-- 030_forecast: approved forecast versions (`tokenmeter forecast approve`)
-- and their lines (docs/forecast.md); the views the board pack and analysts
-- read beside v_forecast_variance are repeatable, in views/80_forecast.sql.
-- An approval also writes its monthly amounts per workflow to
-- `forecasts` (source 'forecast version <id>'), so v_forecast_variance
-- compares actuals with the latest approved version.

-- One row per approved version: who, when, which scenario, and the plan
-- itself (YAML) so the version can be re-priced exactly later (bridge).
CREATE TABLE IF NOT EXISTS {{db}}.forecast_versions{{onCluster}}
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
ENGINE = {{engine "forecast_versions" "ReplacingMergeTree" "approved_at"}}
ORDER BY (tenant, version_id);

-- The version's forecast per workflow, model and month (the plan's month in
-- its time zone), with the drivers behind the cost.
CREATE TABLE IF NOT EXISTS {{db}}.forecast_lines{{onCluster}}
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
ENGINE = {{engine "forecast_lines" "ReplacingMergeTree"}}
ORDER BY (tenant, version_id, workflow, provider, model, month);
