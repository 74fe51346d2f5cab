-- 017_chargeback: chargeback inputs from priced usage (docs/procurement.md).
-- Chargeback inputs (`chargeback statement -config`): the month's spend per
-- cost centre and origin in the tenant's reporting currency, and calls per
-- cost centre of each workflow (the `calls` driver of shared workflows;
-- outcomes per cost centre are not derived here and read 0).
CREATE VIEW IF NOT EXISTS {{db}}.v_chargeback_spend_monthly AS
SELECT
    formatDateTime(toStartOfMonth(local_date), '%Y-%m')        AS month,
    CAST(tenant AS String)                                     AS tenant,
    CAST(cost_centre AS String)                                AS cost_centre,
    CAST(workflow AS String)                                   AS workflow,
    CAST(provider AS String)                                   AS provider,
    CAST(model AS String)                                      AS model,
    CAST(billing_currency AS String)                           AS currency,
    sum(billed_effective_cost)                                 AS cost
FROM {{db}}.priced_usage
GROUP BY month, tenant, cost_centre, workflow, provider, model, currency;

CREATE VIEW IF NOT EXISTS {{db}}.v_chargeback_drivers_monthly AS
SELECT
    formatDateTime(toStartOfMonth(local_date), '%Y-%m')        AS month,
    CAST(tenant AS String)                                     AS tenant,
    CAST(workflow AS String)                                   AS workflow,
    CAST(cost_centre AS String)                                AS cost_centre,
    count()                                                    AS calls,
    toUInt64(0)                                                AS outcomes
FROM {{db}}.priced_usage
WHERE cost_centre != ''
GROUP BY month, tenant, workflow, cost_centre;
