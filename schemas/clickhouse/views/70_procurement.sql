-- Procurement views (docs/procurement.md), repeatable: re-created by `tokenmeter migrate`
-- when they change. Their tables are in migration 016_procurement.sql.

-- They feed the contract simulator, the bill reconciliation, commitment
-- drawdown and chargeback from priced usage as it arrives.

-- Monthly usage per tenant/provider/model/tier for `contracts simulate`
-- (the columns of its usage CSV). period is the tenant's calendar month.
CREATE OR REPLACE VIEW {{db}}.v_procurement_usage_monthly{{onCluster}} AS
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
CREATE OR REPLACE VIEW {{db}}.v_bill_metered_hourly{{onCluster}} AS
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
CREATE OR REPLACE VIEW {{db}}.v_bill_evidence_hourly{{onCluster}} AS
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
CREATE OR REPLACE VIEW {{db}}.v_commitment_spend_daily{{onCluster}} AS
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

CREATE OR REPLACE VIEW {{db}}.v_bill_reconciliation{{onCluster}} AS
SELECT day, provider, project, model, currency, metered, billed, difference, causes, cause_amounts, residual, problem, run_at
FROM {{db}}.bill_reconciliation FINAL;

-- Daily charges as originally reported plus their corrections, FOCUS-named.
CREATE OR REPLACE VIEW {{db}}.v_focus_usage_corrected{{onCluster}} AS
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

CREATE OR REPLACE VIEW {{db}}.v_focus_contract_commitment{{onCluster}} AS
SELECT BillingCurrency, ContractCommitmentCost, ContractCommitmentId, ContractCommitmentCategory, ContractCommitmentDescription,
       ContractCommitmentPeriodEnd, ContractCommitmentPeriodStart, ContractCommitmentQuantity, ContractCommitmentType,
       ContractCommitmentUnit, ContractId, ContractPeriodEnd, ContractPeriodStart
FROM {{db}}.contract_commitments FINAL;
