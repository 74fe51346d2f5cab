-- 003_rollups: pre-aggregated usage and outcomes, maintained by materialized
-- views on every insert into priced_usage / outcomes. Month and quarter
-- queries read usage_daily (tenant-local dates); dashboards read
-- usage_hourly / usage_minute (UTC). Sums are plain columns (SummingMergeTree
-- adds them up on merge: always query with sum() ... GROUP BY); distinct
-- tasks are uniq states: read them with uniqMerge(tasks).
-- Dimension columns are plain String (CAST from the raw LowCardinality).

CREATE TABLE IF NOT EXISTS {{db}}.usage_daily
(
    local_date                   Date,
    tenant                       String,
    workflow                     String,
    provider                     String,
    model                        String,
    team                         String,
    prompt_template              String,
    prompt_version               String,
    pricing_currency             String,
    billing_currency             String,
    calls                        UInt64,
    input_tokens                 UInt64,
    cache_read_input_tokens      UInt64,
    cache_write_input_tokens     UInt64,
    uncached_input_tokens        UInt64,
    output_tokens                UInt64,
    reasoning_tokens             UInt64,
    non_reasoning_output_tokens  UInt64,
    list_cost                    Decimal(38, 12),
    contracted_cost              Decimal(38, 12),
    effective_cost               Decimal(38, 12),
    cache_savings                Decimal(38, 12),
    billed_list_cost             Decimal(38, 12),
    billed_contracted_cost       Decimal(38, 12),
    billed_effective_cost        Decimal(38, 12),
    billed_cache_savings         Decimal(38, 12),
    tasks                        AggregateFunction(uniq, String)
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(local_date)
ORDER BY (tenant, local_date, workflow, provider, model, team, prompt_template, prompt_version, pricing_currency, billing_currency);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.mv_usage_daily TO {{db}}.usage_daily AS
SELECT
    local_date,
    CAST(tenant AS String) AS tenant,
    CAST(workflow AS String) AS workflow,
    CAST(provider AS String) AS provider,
    CAST(model AS String) AS model,
    CAST(team AS String) AS team,
    CAST(prompt_template AS String) AS prompt_template,
    CAST(prompt_version AS String) AS prompt_version,
    CAST(pricing_currency AS String) AS pricing_currency,
    CAST(billing_currency AS String) AS billing_currency,
    count() AS calls,
    sum(input_tokens) AS input_tokens,
    sum(cache_read_input_tokens) AS cache_read_input_tokens,
    sum(cache_write_input_tokens) AS cache_write_input_tokens,
    sum(uncached_input_tokens) AS uncached_input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(non_reasoning_output_tokens) AS non_reasoning_output_tokens,
    sum(list_cost) AS list_cost,
    sum(contracted_cost) AS contracted_cost,
    sum(effective_cost) AS effective_cost,
    sum(cache_savings) AS cache_savings,
    sum(billed_list_cost) AS billed_list_cost,
    sum(billed_contracted_cost) AS billed_contracted_cost,
    sum(billed_effective_cost) AS billed_effective_cost,
    sum(billed_cache_savings) AS billed_cache_savings,
    uniqState(task_id) AS tasks
FROM {{db}}.priced_usage
GROUP BY local_date, tenant, workflow, provider, model, team, prompt_template, prompt_version, pricing_currency, billing_currency;

CREATE TABLE IF NOT EXISTS {{db}}.usage_hourly
(
    hour                         DateTime('UTC'),
    tenant                       String,
    workflow                     String,
    provider                     String,
    model                        String,
    team                         String,
    prompt_template              String,
    prompt_version               String,
    pricing_currency             String,
    billing_currency             String,
    calls                        UInt64,
    input_tokens                 UInt64,
    cache_read_input_tokens      UInt64,
    cache_write_input_tokens     UInt64,
    uncached_input_tokens        UInt64,
    output_tokens                UInt64,
    reasoning_tokens             UInt64,
    non_reasoning_output_tokens  UInt64,
    list_cost                    Decimal(38, 12),
    contracted_cost              Decimal(38, 12),
    effective_cost               Decimal(38, 12),
    cache_savings                Decimal(38, 12),
    billed_list_cost             Decimal(38, 12),
    billed_contracted_cost       Decimal(38, 12),
    billed_effective_cost        Decimal(38, 12),
    billed_cache_savings         Decimal(38, 12),
    tasks                        AggregateFunction(uniq, String)
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant, hour, workflow, provider, model, team, prompt_template, prompt_version, pricing_currency, billing_currency);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.mv_usage_hourly TO {{db}}.usage_hourly AS
SELECT
    toStartOfHour(event_time) AS hour,
    CAST(tenant AS String) AS tenant,
    CAST(workflow AS String) AS workflow,
    CAST(provider AS String) AS provider,
    CAST(model AS String) AS model,
    CAST(team AS String) AS team,
    CAST(prompt_template AS String) AS prompt_template,
    CAST(prompt_version AS String) AS prompt_version,
    CAST(pricing_currency AS String) AS pricing_currency,
    CAST(billing_currency AS String) AS billing_currency,
    count() AS calls,
    sum(input_tokens) AS input_tokens,
    sum(cache_read_input_tokens) AS cache_read_input_tokens,
    sum(cache_write_input_tokens) AS cache_write_input_tokens,
    sum(uncached_input_tokens) AS uncached_input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(non_reasoning_output_tokens) AS non_reasoning_output_tokens,
    sum(list_cost) AS list_cost,
    sum(contracted_cost) AS contracted_cost,
    sum(effective_cost) AS effective_cost,
    sum(cache_savings) AS cache_savings,
    sum(billed_list_cost) AS billed_list_cost,
    sum(billed_contracted_cost) AS billed_contracted_cost,
    sum(billed_effective_cost) AS billed_effective_cost,
    sum(billed_cache_savings) AS billed_cache_savings,
    uniqState(task_id) AS tasks
FROM {{db}}.priced_usage
GROUP BY hour, tenant, workflow, provider, model, team, prompt_template, prompt_version, pricing_currency, billing_currency;

CREATE TABLE IF NOT EXISTS {{db}}.usage_minute
(
    minute                       DateTime('UTC'),
    tenant                       String,
    workflow                     String,
    provider                     String,
    model                        String,
    team                         String,
    prompt_template              String,
    prompt_version               String,
    pricing_currency             String,
    billing_currency             String,
    calls                        UInt64,
    input_tokens                 UInt64,
    cache_read_input_tokens      UInt64,
    cache_write_input_tokens     UInt64,
    uncached_input_tokens        UInt64,
    output_tokens                UInt64,
    reasoning_tokens             UInt64,
    non_reasoning_output_tokens  UInt64,
    list_cost                    Decimal(38, 12),
    contracted_cost              Decimal(38, 12),
    effective_cost               Decimal(38, 12),
    cache_savings                Decimal(38, 12),
    billed_list_cost             Decimal(38, 12),
    billed_contracted_cost       Decimal(38, 12),
    billed_effective_cost        Decimal(38, 12),
    billed_cache_savings         Decimal(38, 12),
    tasks                        AggregateFunction(uniq, String)
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant, minute, workflow, provider, model, team, prompt_template, prompt_version, pricing_currency, billing_currency);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.mv_usage_minute TO {{db}}.usage_minute AS
SELECT
    toStartOfMinute(event_time) AS minute,
    CAST(tenant AS String) AS tenant,
    CAST(workflow AS String) AS workflow,
    CAST(provider AS String) AS provider,
    CAST(model AS String) AS model,
    CAST(team AS String) AS team,
    CAST(prompt_template AS String) AS prompt_template,
    CAST(prompt_version AS String) AS prompt_version,
    CAST(pricing_currency AS String) AS pricing_currency,
    CAST(billing_currency AS String) AS billing_currency,
    count() AS calls,
    sum(input_tokens) AS input_tokens,
    sum(cache_read_input_tokens) AS cache_read_input_tokens,
    sum(cache_write_input_tokens) AS cache_write_input_tokens,
    sum(uncached_input_tokens) AS uncached_input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(non_reasoning_output_tokens) AS non_reasoning_output_tokens,
    sum(list_cost) AS list_cost,
    sum(contracted_cost) AS contracted_cost,
    sum(effective_cost) AS effective_cost,
    sum(cache_savings) AS cache_savings,
    sum(billed_list_cost) AS billed_list_cost,
    sum(billed_contracted_cost) AS billed_contracted_cost,
    sum(billed_effective_cost) AS billed_effective_cost,
    sum(billed_cache_savings) AS billed_cache_savings,
    uniqState(task_id) AS tasks
FROM {{db}}.priced_usage
GROUP BY minute, tenant, workflow, provider, model, team, prompt_template, prompt_version, pricing_currency, billing_currency;

-- Outcomes per tenant-local day. value_billed sums the values given in the
-- tenant's reporting currency; values in another currency are not converted
-- and are counted in value_other_currency_records instead.
CREATE TABLE IF NOT EXISTS {{db}}.outcomes_daily
(
    local_date                   Date,
    tenant                       String,
    workflow                     String,
    outcome_type                 String,
    billing_currency             String,
    records                      UInt64,
    outcomes                     UInt64,
    value_billed                 Decimal(38, 12),
    value_other_currency_records UInt64
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(local_date)
ORDER BY (tenant, local_date, workflow, outcome_type, billing_currency);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.mv_outcomes_daily TO {{db}}.outcomes_daily AS
SELECT
    local_date,
    CAST(tenant AS String) AS tenant,
    CAST(workflow AS String) AS workflow,
    CAST(outcome_type AS String) AS outcome_type,
    CAST(billing_currency AS String) AS billing_currency,
    count() AS records,
    sum(count) AS outcomes,
    sumIf(value_amount, value_currency = billing_currency) AS value_billed,
    countIf(value_currency != '' AND value_currency != billing_currency) AS value_other_currency_records
FROM {{db}}.outcomes
GROUP BY local_date, tenant, workflow, outcome_type, billing_currency;
