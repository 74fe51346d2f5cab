-- 008_outcome_value_fx: outcome values given in the pricing currency (USD)
-- are converted with the FX rate the processor used for the tenant's usage
-- in that month (the rate of the month's latest priced event, as stored in
-- priced_usage.fx_rate), by multiplication only. 005 derived the rate by
-- dividing billed by USD cost, which rounds at the 12th place and drifted
-- (40140 USD at 7.785 came out as 312489.899999518320 HKD instead of
-- 312489.9). Values in a third currency, or in a month without usage, stay
-- unconverted and are counted in value_other_currency_records, as before.

DROP TABLE IF EXISTS {{db}}.v_outcome_value_monthly;

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
    SELECT CAST(tenant AS String) AS tenant, toStartOfMonth(local_date) AS month,
           CAST(billing_currency AS String) AS billing_currency,
           CAST(any(pricing_currency) AS String) AS pricing_currency,
           argMax(fx_rate, event_time) AS rate
    FROM {{db}}.priced_usage
    GROUP BY tenant, month, billing_currency
) AS r USING (tenant, month, billing_currency)
GROUP BY tenant, workflow, month, billing_currency;
