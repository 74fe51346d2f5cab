-- 016_procurement: the buyer's side (docs/procurement.md). Views that feed
-- the contract simulator, the bill reconciliation, commitment drawdown and
-- chargeback from priced usage as it arrives, and tables for what those
-- commands write back: reconciliation results, correction rows for
-- re-priced closed periods, and FOCUS 1.3 contract commitments.

-- Monthly usage per tenant/provider/model/tier for `contracts simulate`
-- (the columns of its usage CSV). period is the tenant's calendar month.
CREATE VIEW IF NOT EXISTS {{db}}.v_procurement_usage_monthly AS
SELECT
    formatDateTime(toStartOfMonth(local_date), '%Y-%m')        AS period,
    CAST(tenant AS String)                                     AS tenant,
    CAST(provider AS String)                                   AS provider,
    CAST(model AS String)                                      AS model,
    replaceRegexpOne(CAST(pricing_tier AS String), '_long_context$', '') AS tier,
    endsWith(CAST(pricing_tier AS String), '_long_context')    AS long_context,
    count()                                                    AS requests,
    sum(input_tokens)                                          AS input_tokens,
    sum(cache_read_input_tokens)                               AS cache_read_input_tokens,
    sum(cache_write_input_tokens)                              AS cache_write_input_tokens,
    sum(cache_write_1h_input_tokens)                           AS cache_write_1h_input_tokens,
    sum(output_tokens)                                         AS output_tokens,
    sum(reasoning_tokens)                                      AS reasoning_tokens
FROM {{db}}.priced_usage
GROUP BY period, tenant, provider, model, tier, long_context;

-- Metered usage per UTC hour, provider, provider project and model, one row
-- per token class, for `bill reconcile` (its metered CSV columns). The
-- provider's project/workspace/subscription comes from the event attribute
-- tokenmeter.provider_project ('' when the application did not send it).
CREATE VIEW IF NOT EXISTS {{db}}.v_bill_metered_hourly AS
SELECT
    toStartOfHour(event_time)                                  AS hour,
    CAST(provider AS String)                                   AS provider,
    if(has(attribute_keys, 'tokenmeter.provider_project'),
       attribute_values[indexOf(attribute_keys, 'tokenmeter.provider_project')], '') AS project,
    CAST(model AS String)                                      AS model,
    cls.1                                                      AS class,
    sum(cls.2)                                                 AS tokens,
    sum(cls.3)                                                 AS cost,
    any(CAST(pricing_currency AS String))                      AS pricing_currency,
    sum(cls.3 * fx_rate)                                       AS billed_cost,
    any(CAST(billing_currency AS String))                      AS billing_currency,
    fx_rate
FROM {{db}}.priced_usage
ARRAY JOIN [
    ('input',       uncached_input_tokens,       cost_input),
    ('cache_read',  cache_read_input_tokens,     cost_cache_read),
    ('cache_write', cache_write_input_tokens,    cost_cache_write),
    ('output',      non_reasoning_output_tokens, cost_output),
    ('reasoning',   reasoning_tokens,            cost_reasoning),
    ('units',       toUInt64(0),                 cost_units)
] AS cls
GROUP BY hour, provider, project, model, class, fx_rate
HAVING tokens > 0 OR cost != 0;

-- Evidence for the reconciliation's explanations: events refused by the
-- pipeline (the DLQ; their cost is not known, amount 0 unless the event said
-- what it cost) and events flagged tokenmeter.usage_incomplete=true (the
-- provider-reported cost above what was metered).
CREATE VIEW IF NOT EXISTS {{db}}.v_bill_evidence_hourly AS
SELECT
    'dlq'                                                      AS kind,
    toStartOfHour(event_time)                                  AS hour,
    CAST(provider AS String)                                   AS provider,
    ''                                                         AS project,
    CAST(model AS String)                                      AS model,
    count()                                                    AS events,
    toDecimal128(0, 12)                                        AS amount
FROM {{db}}.dlq
WHERE stage != 'sink'
GROUP BY hour, provider, model
UNION ALL
SELECT
    'incomplete'                                               AS kind,
    toStartOfHour(event_time)                                  AS hour,
    CAST(provider AS String)                                   AS provider,
    if(has(attribute_keys, 'tokenmeter.provider_project'),
       attribute_values[indexOf(attribute_keys, 'tokenmeter.provider_project')], '') AS project,
    CAST(model AS String)                                      AS model,
    count()                                                    AS events,
    sum(if(reported_cost > effective_cost AND reported_cost_currency = pricing_currency, reported_cost - effective_cost, toDecimal128(0, 12))) AS amount
FROM {{db}}.priced_usage
WHERE has(attribute_keys, 'tokenmeter.usage_incomplete')
  AND attribute_values[indexOf(attribute_keys, 'tokenmeter.usage_incomplete')] = 'true'
GROUP BY hour, provider, project, model;

-- Daily spend for commitment drawdown (`commitments status -spend` columns);
-- model is the catalogue's canonical name from price_id.
CREATE VIEW IF NOT EXISTS {{db}}.v_commitment_spend_daily AS
SELECT
    toDate(event_time)                                         AS day,
    CAST(tenant AS String)                                     AS tenant,
    CAST(provider AS String)                                   AS provider,
    arrayStringConcat(arraySlice(splitByChar('/', CAST(price_id AS String)), 2, length(splitByChar('/', CAST(price_id AS String))) - 2), '/') AS model,
    replaceRegexpOne(CAST(pricing_tier AS String), '_long_context$', '') AS tier,
    CAST(pricing_currency AS String)                           AS pricing_currency,
    sum(effective_cost)                                        AS cost
FROM {{db}}.priced_usage
GROUP BY day, tenant, provider, model, tier, pricing_currency;

-- One run of `bill reconcile -write`: a row per day, provider, project and
-- model with the explained causes as parallel arrays. A later run of the
-- same day replaces it (ReplacingMergeTree by run time; read with FINAL or
-- through v_bill_reconciliation).
CREATE TABLE IF NOT EXISTS {{db}}.bill_reconciliation
(
    day               Date,
    provider          LowCardinality(String),
    project           String,
    model             LowCardinality(String),
    currency          LowCardinality(String),
    metered           Decimal(38, 12),
    billed            Decimal(38, 12),
    difference        Decimal(38, 12),
    causes            Array(LowCardinality(String)),
    cause_amounts     Array(Decimal(38, 12)),
    residual          Decimal(38, 12),
    problem           String,
    run_at            DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(run_at)
ORDER BY (day, provider, project, model);

CREATE VIEW IF NOT EXISTS {{db}}.v_bill_reconciliation AS
SELECT day, provider, project, model, currency, metered, billed, difference, causes, cause_amounts, residual, problem, run_at
FROM {{db}}.bill_reconciliation FINAL;

-- Correction rows written when a closed period is re-priced: the re-priced
-- figure minus the original, FOCUS ChargeClass 'Correction'. priced_usage
-- (the originals) is never rewritten.
CREATE TABLE IF NOT EXISTS {{db}}.usage_corrections
(
    day               Date,
    tenant            LowCardinality(String),
    provider          LowCardinality(String),
    model             LowCardinality(String),
    pricing_tier      LowCardinality(String),
    price_id          LowCardinality(String),
    pricing_currency  LowCardinality(String),
    list_cost         Decimal(38, 12),
    contracted_cost   Decimal(38, 12),
    effective_cost    Decimal(38, 12),
    charge_class      LowCardinality(String),
    corrected_at      DateTime64(3, 'UTC')
)
ENGINE = MergeTree()
ORDER BY (tenant, day, provider, model, corrected_at);

-- Daily charges as originally reported plus their corrections, FOCUS-named.
CREATE VIEW IF NOT EXISTS {{db}}.v_focus_usage_corrected AS
SELECT
    day                                   AS ChargePeriodStart,
    day + 1                               AS ChargePeriodEnd,
    ''                                    AS ChargeClass,
    CAST(tenant AS String)                AS x_Tenant,
    CAST(provider AS String)              AS ProviderName,
    CAST(model AS String)                 AS ServiceName,
    CAST(pricing_tier AS String)          AS x_PricingTier,
    CAST(pricing_currency AS String)      AS PricingCurrency,
    list_cost                             AS ListCost,
    contracted_cost                       AS ContractedCost,
    effective_cost                        AS EffectiveCost
FROM
(
    SELECT toDate(event_time) AS day, tenant, provider, model, pricing_tier, pricing_currency,
           sum(list_cost) AS list_cost, sum(contracted_cost) AS contracted_cost, sum(effective_cost) AS effective_cost
    FROM {{db}}.priced_usage
    GROUP BY day, tenant, provider, model, pricing_tier, pricing_currency
) AS originals
UNION ALL
SELECT day, day + 1, CAST(charge_class AS String), CAST(tenant AS String), CAST(provider AS String), CAST(model AS String),
       CAST(pricing_tier AS String), CAST(pricing_currency AS String), list_cost, contracted_cost, effective_cost
FROM {{db}}.usage_corrections;

-- FOCUS 1.3 Contract Commitment dataset, written by `commitments focus -write`
-- (one row per commitment period; a rewrite of the same id replaces it).
CREATE TABLE IF NOT EXISTS {{db}}.contract_commitments
(
    BillingCurrency                 LowCardinality(String),
    ContractCommitmentCost          Decimal(38, 12),
    ContractCommitmentId            String,
    ContractCommitmentCategory      LowCardinality(String),
    ContractCommitmentDescription   String,
    ContractCommitmentPeriodEnd     DateTime('UTC'),
    ContractCommitmentPeriodStart   DateTime('UTC'),
    ContractCommitmentQuantity      Nullable(Decimal(38, 12)),
    ContractCommitmentType          LowCardinality(String),
    ContractCommitmentUnit          Nullable(String),
    ContractId                      String,
    ContractPeriodEnd               DateTime('UTC'),
    ContractPeriodStart             DateTime('UTC'),
    written_at                      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(written_at)
ORDER BY ContractCommitmentId;

CREATE VIEW IF NOT EXISTS {{db}}.v_focus_contract_commitment AS
SELECT BillingCurrency, ContractCommitmentCost, ContractCommitmentId, ContractCommitmentCategory, ContractCommitmentDescription,
       ContractCommitmentPeriodEnd, ContractCommitmentPeriodStart, ContractCommitmentQuantity, ContractCommitmentType,
       ContractCommitmentUnit, ContractId, ContractPeriodEnd, ContractPeriodStart
FROM {{db}}.contract_commitments FINAL;
