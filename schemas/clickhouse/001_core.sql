-- 001_core: the tables the sink writes, one per Kafka topic, and the offset
-- ledger the sink resumes from.
--
-- Conventions (docs/clickhouse.md):
--   * money is Decimal(38, 12), never a float; *_cost columns are in the
--     pricing currency (USD), billed_* columns in the tenant's reporting
--     currency (FOCUS: ListCost/ContractedCost/EffectiveCost are in
--     PricingCurrency, BilledCost in BillingCurrency);
--   * event_time is UTC; local_date is the calendar date in the tenant's
--     time zone, computed by the sink when the row is written, so month and
--     quarter boundaries are the tenant's;
--   * kafka_topic/kafka_partition/kafka_offset say which Kafka record a row
--     came from: the sink resumes each partition after the highest offset
--     ClickHouse holds (table sink_offsets), which is what makes the
--     pipeline exactly once into every table and rollup.
-- {{db}} is replaced by the configured database name.

CREATE TABLE IF NOT EXISTS {{db}}.priced_usage
(
    event_id                     String,
    event_time                   DateTime('UTC'),
    event_time_ms                UInt16,
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

    cost_input                   Decimal(38, 12),
    cost_cache_read              Decimal(38, 12),
    cost_cache_write             Decimal(38, 12),
    cost_output                  Decimal(38, 12),
    cost_reasoning               Decimal(38, 12),
    cost_units                   Decimal(38, 12),

    pricing_currency             LowCardinality(String),
    list_cost                    Decimal(38, 12),
    contracted_cost              Decimal(38, 12),
    effective_cost               Decimal(38, 12),
    cache_savings                Decimal(38, 12),

    billing_currency             LowCardinality(String),
    fx_rate                      Decimal(38, 12),
    fx_date                      Date,
    billed_list_cost             Decimal(38, 12),
    billed_contracted_cost       Decimal(38, 12),
    billed_effective_cost        Decimal(38, 12),
    billed_cache_savings         Decimal(38, 12),

    reported_cost                Decimal(38, 12),
    reported_cost_currency       LowCardinality(String),
    priced_at                    DateTime('UTC'),

    kafka_topic                  LowCardinality(String),
    kafka_partition              Int32,
    kafka_offset                 Int64,
    inserted_at                  DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant, workflow, event_time, event_id);

CREATE TABLE IF NOT EXISTS {{db}}.outcomes
(
    outcome_id        String,
    event_time        DateTime('UTC'),
    event_time_ms     UInt16,
    local_date        Date,
    time_zone         LowCardinality(String),
    tenant            LowCardinality(String),
    workflow          LowCardinality(String),
    outcome_type      LowCardinality(String),
    count             UInt64,
    value_amount      Decimal(38, 12),
    value_currency    LowCardinality(String),
    billing_currency  LowCardinality(String),
    trace_id          String,
    conversation_id   String,
    attribute_keys    Array(String),
    attribute_values  Array(String),

    kafka_topic       LowCardinality(String),
    kafka_partition   Int32,
    kafka_offset      Int64,
    inserted_at       DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant, workflow, event_time, outcome_id);

CREATE TABLE IF NOT EXISTS {{db}}.dlq
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
    event_time        DateTime('UTC'),
    rejected_at       DateTime('UTC'),
    original          String,

    kafka_topic       LowCardinality(String),
    kafka_partition   Int32,
    kafka_offset      Int64,
    inserted_at       DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(rejected_at)
ORDER BY (stage, reason, rejected_at);

CREATE TABLE IF NOT EXISTS {{db}}.alerts
(
    alert_id          String,
    tenant            LowCardinality(String),
    budget_id         LowCardinality(String),
    period            LowCardinality(String),
    kind              LowCardinality(String),
    threshold         Decimal(38, 12),
    spend             Decimal(38, 12),
    amount            Decimal(38, 12),
    currency          LowCardinality(String),
    mode              LowCardinality(String),
    top_kinds         Array(String),
    top_names         Array(String),
    top_spend         Array(Decimal(38, 12)),
    triggered_at      DateTime('UTC'),
    event_time        DateTime('UTC'),

    kafka_topic       LowCardinality(String),
    kafka_partition   Int32,
    kafka_offset      Int64,
    inserted_at       DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree()
ORDER BY (tenant, budget_id, triggered_at, alert_id);

-- The sink's resume ledger: the highest Kafka offset stored per source topic
-- and partition, across every table above. Each insert of the sink carries
-- rows of one partition in offset order, and these materialized views add
-- that insert's max offset in the same server-side write, so the sink
-- restarts each partition at maxMerge(max_offset) + 1 without scanning the
-- raw tables. Views are named zz_* so that ClickHouse versions that push to
-- views in name order write the ledger after the rollups.
CREATE TABLE IF NOT EXISTS {{db}}.sink_offsets
(
    kafka_topic      String,
    kafka_partition  Int32,
    max_offset       AggregateFunction(max, Int64),
    rows             AggregateFunction(count)
)
ENGINE = AggregatingMergeTree()
ORDER BY (kafka_topic, kafka_partition);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.zz_sink_offsets_priced_usage TO {{db}}.sink_offsets AS
SELECT CAST(kafka_topic AS String) AS kafka_topic, kafka_partition, maxState(kafka_offset) AS max_offset, countState() AS rows
FROM {{db}}.priced_usage GROUP BY kafka_topic, kafka_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.zz_sink_offsets_outcomes TO {{db}}.sink_offsets AS
SELECT CAST(kafka_topic AS String) AS kafka_topic, kafka_partition, maxState(kafka_offset) AS max_offset, countState() AS rows
FROM {{db}}.outcomes GROUP BY kafka_topic, kafka_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.zz_sink_offsets_dlq TO {{db}}.sink_offsets AS
SELECT CAST(kafka_topic AS String) AS kafka_topic, kafka_partition, maxState(kafka_offset) AS max_offset, countState() AS rows
FROM {{db}}.dlq GROUP BY kafka_topic, kafka_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.zz_sink_offsets_alerts TO {{db}}.sink_offsets AS
SELECT CAST(kafka_topic AS String) AS kafka_topic, kafka_partition, maxState(kafka_offset) AS max_offset, countState() AS rows
FROM {{db}}.alerts GROUP BY kafka_topic, kafka_partition;
