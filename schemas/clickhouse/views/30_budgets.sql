-- 5a. Budget status: each active budget in each of its periods (month or
-- quarter) in which the tenant has usage, with what was used against the
-- amount. A quarter's used is the sum of its months, counted once.
-- Budgets scoped to a user_id are not covered (the rollups have no user
-- dimension). status: 'open' until the period ends in the tenant's time
-- zone (tenant_months), then 'closed'.
CREATE OR REPLACE VIEW {{db}}.v_budget_status{{onCluster}} AS
WITH
    monthly AS
    (
        SELECT tenant, workflow, team, toStartOfMonth(local_date) AS month,
               sum(billed_effective_cost) AS spend, sum(input_tokens + output_tokens) AS tokens
        FROM {{db}}.usage_daily
        GROUP BY tenant, workflow, team, month
    ),
    periods AS
    (
        SELECT DISTINCT tenant, 'month' AS period, month AS period_start FROM monthly
        UNION ALL
        SELECT DISTINCT tenant, 'quarter' AS period, toStartOfQuarter(month) AS period_start FROM monthly
    ),
    used AS
    (
        SELECT b.tenant AS tenant, b.budget_id AS budget_id, b.workflow AS workflow, b.team AS team,
               b.period AS period, p.period_start AS period_start, b.unit AS unit, any(b.amount) AS amount,
               sumIf(if(b.unit = 'tokens', CAST(m.tokens AS {{money}}), m.spend),
                     (b.workflow = '' OR b.workflow = m.workflow) AND (b.team = '' OR b.team = m.team)
                     AND if(b.period = 'quarter', toStartOfQuarter(m.month), m.month) = p.period_start) AS used,
               addMonths(p.period_start, if(b.period = 'quarter', 2, 0)) AS last_month
        FROM (SELECT * FROM {{db}}.budgets FINAL WHERE active = 1 AND user_id = '') AS b
        INNER JOIN periods AS p ON p.tenant = b.tenant AND p.period = b.period
        INNER JOIN monthly AS m ON m.tenant = b.tenant
        GROUP BY tenant, budget_id, workflow, team, period, period_start, unit
    )
SELECT
    u.tenant AS tenant, u.budget_id AS budget_id, u.workflow AS workflow, u.team AS team,
    u.period AS period, u.period_start AS period_start, u.unit AS unit, u.amount AS amount, u.used AS used,
    u.used <= u.amount AS within_budget,
    if(u.amount = 0, NULL, u.used * 100 / u.amount) AS used_pct,
    if(ifNull(tm.tenant, '') = '', toDateTime(addMonths(u.last_month, 1), 'UTC'), tm.ends_at) AS period_ends_at,
    if(period_ends_at <= now(), 'closed', 'open') AS status
FROM used AS u
LEFT JOIN (SELECT tenant, month, ends_at FROM {{db}}.tenant_months FINAL) AS tm
    ON tm.tenant = u.tenant AND tm.month = u.last_month;

-- 5b. Budget compliance: share of budgets (and of workflow budgets) within
-- their amount, per tenant and period; status 'open' is month (or
-- quarter) to date, 'closed' a finished period.
CREATE OR REPLACE VIEW {{db}}.v_budget_compliance{{onCluster}} AS
SELECT
    tenant, period, period_start, status,
    count() AS budgets,
    sum(within_budget) AS budgets_within,
    budgets_within / budgets AS share_within,
    countIf(workflow != '') AS workflow_budgets,
    sumIf(within_budget, workflow != '') AS workflow_budgets_within,
    if(workflow_budgets = 0, NULL, workflow_budgets_within / workflow_budgets) AS workflow_share_within,
    groupArrayIf(budget_id, within_budget = 0) AS over_budget
FROM {{db}}.v_budget_status
GROUP BY tenant, period, period_start, status;
