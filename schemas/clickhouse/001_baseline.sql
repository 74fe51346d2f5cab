-- 001_baseline: every table of tokenmeter for ClickHouse 24.8 and later.
-- A fresh baseline (the retired 18.16 schema, 001–008, is not upgraded:
-- recreate such a database). Later changes are new files, 002_… and up;
-- views live in views/ and are re-created when they change
-- (docs/clickhouse.md#changing-the-schema).
--
-- Conventions (docs/clickhouse.md#conventions):
--   * money is {{money}}, never a float, rounded once (half-even) by the
--     processor to that scale and stored as is; *_cost columns are in the
--     pricing currency (USD), billed_* columns in the tenant's reporting
--     currency (FOCUS: ListCost/ContractedCost/EffectiveCost are in
--     PricingCurrency, BilledCost in BillingCurrency);
--   * event_time is a UTC instant to the millisecond; local_date is its
--     calendar date in the tenant's time zone (time_zone), as the priced
--     record carries it, so month and quarter boundaries are the tenant's;
--   * kafka_topic/kafka_partition/kafka_offset say which Kafka record a row
--     came from; the sink resumes from what ClickHouse holds (sink_offsets).
-- Template functions ({{"{{db}}"}}, {{"{{onCluster}}"}}, {{"{{engine …}}"}}, {{"{{money}}"}},
-- {{"{{range rollups}}"}}) are described in internal/chx/migrate.go.

-- ---------------------------------------------------------------- raw events

CREATE TABLE IF NOT EXISTS {{db}}.priced_usage{{onCluster}}
(
    event_id                     String,
    event_time                   DateTime64(3, 'UTC'),
    event_time_ms                UInt16 DEFAULT toUInt16(toUnixTimestamp64Milli(event_time) % 1000),
    local_date                   Date,
    time_zone                    LowCardinality(String),
    tenant                       LowCardinality(String),

    provider                     LowCardinality(String),
    model                        LowCardinality(String),
    operation                    LowCardinality(String),
    service_tier                 LowCardinality(String),
    region                       LowCardinality(String),

    input_tokens                 UInt64,
    cache_read_input_tokens      UInt64,
    cache_write_input_tokens     UInt64,
    cache_write_1h_input_tokens  UInt64,
    uncached_input_tokens        UInt64,
    output_tokens                UInt64,
    reasoning_tokens             UInt64,
    non_reasoning_output_tokens  UInt64,
    images                       UInt64,
    audio_seconds                UInt64,
    requests                     UInt64,
    tool_calls                   UInt64,
    web_searches                 UInt64,

    workflow                     LowCardinality(String),
    prompt_template              LowCardinality(String),
    prompt_version               LowCardinality(String),
    user_id                      String,
    team                         LowCardinality(String),
    cost_centre                  LowCardinality(String),
    application                  LowCardinality(String),
    environment                  LowCardinality(String),
    agent_name                   LowCardinality(String),
    trace_id                     String,
    span_id                      String,
    conversation_id              String,
    session_id                   String,
    task_id                      String,
    attribution_rule             LowCardinality(String),
    attribute_keys               Array(String),
    attribute_values             Array(String),

    price_id                     LowCardinality(String),
    price_source                 LowCardinality(String),
    pricing_tier                 LowCardinality(String),
    contract_id                  LowCardinality(String),

    cost_input                   {{money}},
    cost_cache_read              {{money}},
    cost_cache_write             {{money}},
    cost_output                  {{money}},
    cost_reasoning               {{money}},
    cost_units                   {{money}},

    pricing_currency             LowCardinality(String),
    list_cost                    {{money}},
    contracted_cost              {{money}},
    effective_cost               {{money}},
    cache_savings                {{money}},

    billing_currency             LowCardinality(String),
    fx_rate                      {{money}},
    fx_date                      Date,
    billed_list_cost             {{money}},
    billed_contracted_cost       {{money}},
    billed_effective_cost        {{money}},
    billed_cache_savings         {{money}},

    reported_cost                {{money}},
    reported_cost_currency       LowCardinality(String),
    priced_at                    DateTime64(3, 'UTC'),

    kafka_topic                  LowCardinality(String),
    kafka_partition              Int32,
    kafka_offset                 Int64,
    inserted_at                  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "priced_usage" "MergeTree"}}
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant, workflow, event_time, event_id);

CREATE TABLE IF NOT EXISTS {{db}}.outcomes{{onCluster}}
(
    outcome_id        String,
    event_time        DateTime64(3, 'UTC'),
    event_time_ms     UInt16 DEFAULT toUInt16(toUnixTimestamp64Milli(event_time) % 1000),
    local_date        Date,
    time_zone         LowCardinality(String),
    tenant            LowCardinality(String),
    workflow          LowCardinality(String),
    outcome_type      LowCardinality(String),
    count             UInt64,
    value_amount      {{money}},
    value_currency    LowCardinality(String),
    billing_currency  LowCardinality(String),
    trace_id          String,
    conversation_id   String,
    attribute_keys    Array(String),
    attribute_values  Array(String),

    kafka_topic       LowCardinality(String),
    kafka_partition   Int32,
    kafka_offset      Int64,
    inserted_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "outcomes" "MergeTree"}}
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant, workflow, event_time, outcome_id);

CREATE TABLE IF NOT EXISTS {{db}}.dlq{{onCluster}}
(
    id                String,
    stage             LowCardinality(String),
    reason            LowCardinality(String),
    detail            String,
    tenant            LowCardinality(String),
    event_id          String,
    provider          LowCardinality(String),
    model             LowCardinality(String),
    source_topic      LowCardinality(String),
    source_partition  Int32,
    source_offset     Int64,
    event_time        DateTime64(3, 'UTC'),
    rejected_at       DateTime64(3, 'UTC'),
    original          String,

    kafka_topic       LowCardinality(String),
    kafka_partition   Int32,
    kafka_offset      Int64,
    inserted_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "dlq" "MergeTree"}}
PARTITION BY toYYYYMM(rejected_at)
ORDER BY (stage, reason, rejected_at);

CREATE TABLE IF NOT EXISTS {{db}}.alerts{{onCluster}}
(
    alert_id          String,
    tenant            LowCardinality(String),
    budget_id         LowCardinality(String),
    period            LowCardinality(String),
    kind              LowCardinality(String),
    threshold         {{money}},
    spend             {{money}},
    amount            {{money}},
    currency          LowCardinality(String),
    mode              LowCardinality(String),
    top_kinds         Array(String),
    top_names         Array(String),
    top_spend         Array({{money}}),
    triggered_at      DateTime64(3, 'UTC'),
    event_time        DateTime64(3, 'UTC'),

    kafka_topic       LowCardinality(String),
    kafka_partition   Int32,
    kafka_offset      Int64,
    inserted_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "alerts" "MergeTree"}}
ORDER BY (tenant, budget_id, triggered_at, alert_id);

-- The sink's resume ledger: the highest Kafka offset stored per source topic
-- and partition, across every table above, maintained by materialized views
-- in the same server-side write as each insert.
CREATE TABLE IF NOT EXISTS {{db}}.sink_offsets{{onCluster}}
(
    kafka_topic      String,
    kafka_partition  Int32,
    max_offset       AggregateFunction(max, Int64),
    rows             AggregateFunction(count)
)
ENGINE = {{engine "sink_offsets" "AggregatingMergeTree"}}
ORDER BY (kafka_topic, kafka_partition);
{{range $t := list "priced_usage" "outcomes" "dlq" "alerts"}}
CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.zz_sink_offsets_{{$t}}{{onCluster}} TO {{db}}.sink_offsets AS
SELECT CAST(kafka_topic AS String) AS kafka_topic, kafka_partition, maxState(kafka_offset) AS max_offset, countState() AS rows
FROM {{db}}.{{$t}} GROUP BY kafka_topic, kafka_partition;
{{end}}
-- ---------------------------------------------------------------- rollups
-- Pre-aggregated usage, maintained by materialized views on every insert
-- into priced_usage: usage_minute and usage_hourly by UTC time bucket (for
-- dashboards), usage_daily by tenant-local date (for months and quarters).
-- All three have one definition. Sums are plain columns (SummingMergeTree
-- adds them up on merge: query with sum() … GROUP BY); distinct tasks are
-- uniq states: read them with uniqMerge(tasks). Dimensions are String.
{{range rollups}}
CREATE TABLE IF NOT EXISTS {{db}}.{{.Table}}{{onCluster}}
(
    {{.Bucket}}                  {{.Type}},
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
    list_cost                    {{money}},
    contracted_cost              {{money}},
    effective_cost               {{money}},
    cache_savings                {{money}},
    billed_list_cost             {{money}},
    billed_contracted_cost       {{money}},
    billed_effective_cost        {{money}},
    billed_cache_savings         {{money}},
    tasks                        AggregateFunction(uniq, String)
)
ENGINE = {{engine .Table "SummingMergeTree"}}
PARTITION BY toYYYYMM({{.Bucket}})
ORDER BY (tenant, {{.Bucket}}, workflow, provider, model, team, prompt_template, prompt_version, pricing_currency, billing_currency);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.mv_{{.Table}}{{onCluster}} TO {{db}}.{{.Table}} AS
SELECT
    {{.Expr}} AS {{.Bucket}},
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
GROUP BY {{.Bucket}}, tenant, workflow, provider, model, team, prompt_template, prompt_version, pricing_currency, billing_currency;
{{end}}
-- Outcomes per tenant-local day. value_billed sums the values given in the
-- tenant's reporting currency; values in another currency are counted in
-- value_other_currency_records (v_outcome_value_monthly converts USD ones).
CREATE TABLE IF NOT EXISTS {{db}}.outcomes_daily{{onCluster}}
(
    local_date                   Date,
    tenant                       String,
    workflow                     String,
    outcome_type                 String,
    billing_currency             String,
    records                      UInt64,
    outcomes                     UInt64,
    value_billed                 {{money}},
    value_other_currency_records UInt64
)
ENGINE = {{engine "outcomes_daily" "SummingMergeTree"}}
PARTITION BY toYYYYMM(local_date)
ORDER BY (tenant, local_date, workflow, outcome_type, billing_currency);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.mv_outcomes_daily{{onCluster}} TO {{db}}.outcomes_daily AS
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

-- ---------------------------------------------------------------- reference
-- Synced from the pipeline config by `tokenmeter migrate CONFIG` (and the
-- tenants by the sink's auto_migrate), or imported from a file (`tokenmeter
-- forecasts import FILE`). ReplacingMergeTree keyed by what identifies a
-- row, versioned by synced_at: a re-sync replaces; readers use FINAL.

CREATE TABLE IF NOT EXISTS {{db}}.tenants{{onCluster}}
(
    tenant              String,
    time_zone           String,
    reporting_currency  String,
    synced_at           DateTime64(3, 'UTC')
)
ENGINE = {{engine "tenants" "ReplacingMergeTree" "synced_at"}}
ORDER BY tenant;

-- One row per tenant and calendar month in the tenant's time zone, with the
-- month's bounds as UTC instants (from Go's zone database): views use it to
-- tell month-to-date from closed months.
CREATE TABLE IF NOT EXISTS {{db}}.tenant_months{{onCluster}}
(
    tenant      String,
    month       Date,
    quarter     Date,
    starts_at   DateTime('UTC'),
    ends_at     DateTime('UTC'),
    synced_at   DateTime64(3, 'UTC')
)
ENGINE = {{engine "tenant_months" "ReplacingMergeTree" "synced_at"}}
ORDER BY (tenant, month);

CREATE TABLE IF NOT EXISTS {{db}}.budgets{{onCluster}}
(
    budget_id   String,
    tenant      String,
    workflow    String,
    team        String,
    user_id     String,
    period      String,
    amount      {{money}},
    unit        String,
    mode        String,
    owner       String,
    active      UInt8,
    synced_at   DateTime64(3, 'UTC')
)
ENGINE = {{engine "budgets" "ReplacingMergeTree" "synced_at"}}
ORDER BY (tenant, budget_id);

-- Monthly forecast per workflow, in the tenant's reporting currency.
CREATE TABLE IF NOT EXISTS {{db}}.forecasts{{onCluster}}
(
    tenant       String,
    workflow     String,
    month        Date,
    amount       {{money}},
    currency     String,
    source       String,
    imported_at  DateTime64(3, 'UTC')
)
ENGINE = {{engine "forecasts" "ReplacingMergeTree" "imported_at"}}
ORDER BY (tenant, workflow, month);

-- Every catalogue price, past, present and future: one row per provider,
-- model, pricing tier and effective-dated catalogue entry (price_id names
-- the entry's valid_from), so priced_usage.price_id of any event, backfilled
-- ones included, joins to the rates it was priced at. valid_to NULL is
-- open-ended. Rates are per million tokens in `currency` (0 = not priced
-- separately).
CREATE TABLE IF NOT EXISTS {{db}}.price_catalogue{{onCluster}}
(
    provider                 String,
    model                    String,
    tier                     String,
    price_id                 String,
    version                  String,
    source                   String,
    valid_from               DateTime64(3, 'UTC'),
    valid_to                 Nullable(DateTime64(3, 'UTC')),
    currency                 String,
    long_context_threshold   Int64,
    input_per_mtok           {{money}},
    cache_read_per_mtok      {{money}},
    cache_write_per_mtok     {{money}},
    cache_write_1h_per_mtok  {{money}},
    output_per_mtok          {{money}},
    reasoning_per_mtok       {{money}},
    synced_at                DateTime64(3, 'UTC')
)
ENGINE = {{engine "price_catalogue" "ReplacingMergeTree" "synced_at"}}
ORDER BY (provider, model, tier, price_id);
