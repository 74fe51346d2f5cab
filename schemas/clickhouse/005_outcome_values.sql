-- 005_outcome_values: outcome values given in the pricing currency (USD)
-- are converted to the tenant's reporting currency at the month's effective
-- rate of the tenant's usage (sum of billed_effective_cost / sum of
-- effective_cost, from usage_daily). Values in a third currency, or in a
-- month without usage to take a rate from, stay unconverted and are counted
-- in value_other_currency_records. Replaces v_workflow_period of 004 (the
-- views built on it pick it up by name).

CREATE VIEW IF NOT EXISTS {{db}}.v_outcome_value_monthly AS
SELECT
    tenant, workflow, month, billing_currency,
    sum(outs) AS outcomes,
    sum(if(vc = billing_currency, amt,
           if(vc = pricing_currency AND rate != 0, toDecimal128(amt * rate, 12), toDecimal128(0, 12)))) AS outcome_value,
    sum(if(vc = '' OR vc = billing_currency OR (vc = pricing_currency AND rate != 0), toUInt64(0), recs)) AS value_other_currency_records
FROM
(
    SELECT CAST(tenant AS String) AS tenant, CAST(workflow AS String) AS workflow, toStartOfMonth(local_date) AS month,
           CAST(billing_currency AS String) AS billing_currency, CAST(value_currency AS String) AS vc,
           sum(count) AS outs, sum(value_amount) AS amt, count() AS recs
    FROM {{db}}.outcomes
    GROUP BY tenant, workflow, month, billing_currency, vc
) AS o
ANY LEFT JOIN
(
    SELECT tenant, month, billing_currency, pricing_currency,
           if(usd = 0, toDecimal128(0, 12), billed / if(usd = 0, toDecimal128(1, 12), usd)) AS rate
    FROM
    (
        SELECT tenant, toStartOfMonth(local_date) AS month, billing_currency, any(pricing_currency) AS pricing_currency,
               sum(billed_effective_cost) AS billed, sum(effective_cost) AS usd
        FROM {{db}}.usage_daily
        GROUP BY tenant, month, billing_currency
    )
) AS r USING (tenant, month, billing_currency)
GROUP BY tenant, workflow, month, billing_currency;

DROP TABLE IF EXISTS {{db}}.v_workflow_period;

CREATE VIEW IF NOT EXISTS {{db}}.v_workflow_period AS
SELECT
    tenant, workflow, period, period_start, billing_currency,
    sum(c) AS calls,
    sum(sp) AS spend,
    sum(lc) AS list_spend,
    sum(oc) AS outcomes,
    sum(val) AS outcome_value,
    sum(voc) AS value_other_currency_records
FROM
(
    SELECT tenant, workflow, 'month' AS period, toStartOfMonth(local_date) AS period_start, billing_currency,
           sum(calls) AS c, sum(billed_effective_cost) AS sp, sum(billed_list_cost) AS lc,
           toUInt64(0) AS oc, toDecimal128(0, 12) AS val, toUInt64(0) AS voc
    FROM {{db}}.usage_daily GROUP BY tenant, workflow, period_start, billing_currency
    UNION ALL
    SELECT tenant, workflow, 'quarter' AS period, toStartOfQuarter(local_date) AS period_start, billing_currency,
           sum(calls) AS c, sum(billed_effective_cost) AS sp, sum(billed_list_cost) AS lc,
           toUInt64(0) AS oc, toDecimal128(0, 12) AS val, toUInt64(0) AS voc
    FROM {{db}}.usage_daily GROUP BY tenant, workflow, period_start, billing_currency
    UNION ALL
    SELECT tenant, workflow, 'month' AS period, month AS period_start, billing_currency,
           toUInt64(0) AS c, toDecimal128(0, 12) AS sp, toDecimal128(0, 12) AS lc,
           outcomes AS oc, outcome_value AS val, value_other_currency_records AS voc
    FROM {{db}}.v_outcome_value_monthly
    UNION ALL
    SELECT tenant, workflow, 'quarter' AS period, toStartOfQuarter(month) AS period_start, billing_currency,
           toUInt64(0) AS c, toDecimal128(0, 12) AS sp, toDecimal128(0, 12) AS lc,
           outcomes AS oc, outcome_value AS val, value_other_currency_records AS voc
    FROM {{db}}.v_outcome_value_monthly
)
GROUP BY tenant, workflow, period, period_start, billing_currency;
