-- Views for analysts and BI tools (docs/clickhouse.md#views-for-the-cfo-metrics).
-- Repeatable: each is re-created by `tokenmeter migrate` when its text
-- changes; edit it in place. They read the rollups, never the raw events,
-- except v_outcome_cost, v_outcome_value_monthly and v_focus_usage.
-- Periods are calendar months and quarters in the tenant's time zone
-- (local_date); money is in the tenant's reporting currency (billed_*).
-- Sums of money are exact; ratios of money are {{money}} (ClickHouse
-- Decimal division, truncated at the money scale); shares of counts are
-- Float64. NULL means "not defined" (e.g. no outcomes).

-- Outcomes and their value per workflow and month, in the tenant's
-- reporting currency. Values given in the pricing currency (USD) are
-- converted with the FX rate the processor used for the tenant's usage that
-- month (that of the month's latest priced event), rounded half-even once
-- at the money scale as the processor rounds billed amounts. Values in a
-- third currency, or in a month without usage, stay unconverted and are
-- counted in value_other_currency_records.
CREATE OR REPLACE VIEW {{db}}.v_outcome_value_monthly{{onCluster}} AS
SELECT
    o.tenant AS tenant, o.workflow AS workflow, o.month AS month, o.billing_currency AS billing_currency,
    sum(o.outs) AS outcomes,
    sum(multiIf(o.vc = o.billing_currency, o.amt,
                o.vc = r.pricing_currency AND r.rate != 0, CAST(roundBankers(o.amt * r.rate, {{moneyScale}}) AS {{money}}),
                CAST(0 AS {{money}}))) AS outcome_value,
    sum(if(o.vc = '' OR o.vc = o.billing_currency OR (o.vc = r.pricing_currency AND r.rate != 0), toUInt64(0), o.recs)) AS value_other_currency_records
FROM
(
    SELECT CAST(tenant AS String) AS tenant, CAST(workflow AS String) AS workflow, toStartOfMonth(local_date) AS month,
           CAST(billing_currency AS String) AS billing_currency, CAST(value_currency AS String) AS vc,
           sum(count) AS outs, sum(value_amount) AS amt, count() AS recs
    FROM {{db}}.outcomes
    GROUP BY tenant, workflow, month, billing_currency, vc
) AS o
LEFT JOIN
(
    SELECT CAST(tenant AS String) AS tenant, toStartOfMonth(local_date) AS month,
           CAST(billing_currency AS String) AS billing_currency,
           CAST(any(pricing_currency) AS String) AS pricing_currency,
           argMax(fx_rate, event_time) AS rate
    FROM {{db}}.priced_usage
    GROUP BY tenant, month, billing_currency
) AS r ON r.tenant = o.tenant AND r.month = o.month AND r.billing_currency = o.billing_currency
GROUP BY tenant, workflow, month, billing_currency;

-- Base: spend, calls and outcomes per workflow and period (month, quarter).
CREATE OR REPLACE VIEW {{db}}.v_workflow_period{{onCluster}} AS
WITH monthly AS
(
    SELECT tenant, workflow, month, billing_currency,
           sum(c) AS calls, sum(sp) AS spend, sum(lc) AS list_spend,
           sum(oc) AS outcomes, sum(val) AS outcome_value, sum(voc) AS value_other_currency_records
    FROM
    (
        SELECT tenant, workflow, toStartOfMonth(local_date) AS month, billing_currency,
               sum(calls) AS c, sum(billed_effective_cost) AS sp, sum(billed_list_cost) AS lc,
               toUInt64(0) AS oc, CAST(0 AS {{money}}) AS val, toUInt64(0) AS voc
        FROM {{db}}.usage_daily GROUP BY tenant, workflow, month, billing_currency
        UNION ALL
        SELECT tenant, workflow, month, billing_currency,
               toUInt64(0) AS c, CAST(0 AS {{money}}) AS sp, CAST(0 AS {{money}}) AS lc,
               outcomes AS oc, outcome_value AS val, value_other_currency_records AS voc
        FROM {{db}}.v_outcome_value_monthly
    )
    GROUP BY tenant, workflow, month, billing_currency
)
SELECT tenant, workflow, 'month' AS period, month AS period_start, billing_currency,
       calls, spend, list_spend, outcomes, outcome_value, value_other_currency_records
FROM monthly
UNION ALL
SELECT tenant, workflow, 'quarter' AS period, toStartOfQuarter(month) AS period_start, billing_currency,
       sum(calls), sum(spend), sum(list_spend), sum(outcomes), sum(outcome_value), sum(value_other_currency_records)
FROM monthly
GROUP BY tenant, workflow, period_start, billing_currency;
