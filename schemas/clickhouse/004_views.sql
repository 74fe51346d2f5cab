-- 004_views: stable, documented views for analysts and BI tools
-- (docs/clickhouse.md). They read the rollups, never the raw events, except
-- v_outcome_cost, which follows single outcomes to their exact calls.
-- Periods are calendar months and quarters in the tenant's time zone
-- (local_date); money is in the tenant's reporting currency (billed_*).
-- Ratios of money are Decimal(38, 12) (truncated, never rounded up); shares
-- of counts are Float64. NULL means "not defined" (e.g. no outcomes).

-- Base: spend, calls and outcomes per workflow and period (month, quarter).
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
    SELECT tenant, workflow, 'month' AS period, toStartOfMonth(local_date) AS period_start, billing_currency,
           toUInt64(0) AS c, toDecimal128(0, 12) AS sp, toDecimal128(0, 12) AS lc,
           sum(outcomes) AS oc, sum(value_billed) AS val, sum(value_other_currency_records) AS voc
    FROM {{db}}.outcomes_daily GROUP BY tenant, workflow, period_start, billing_currency
    UNION ALL
    SELECT tenant, workflow, 'quarter' AS period, toStartOfQuarter(local_date) AS period_start, billing_currency,
           toUInt64(0) AS c, toDecimal128(0, 12) AS sp, toDecimal128(0, 12) AS lc,
           sum(outcomes) AS oc, sum(value_billed) AS val, sum(value_other_currency_records) AS voc
    FROM {{db}}.outcomes_daily GROUP BY tenant, workflow, period_start, billing_currency
)
GROUP BY tenant, workflow, period, period_start, billing_currency;

-- 1. Cost per business outcome, per workflow and month/quarter.
CREATE VIEW IF NOT EXISTS {{db}}.v_cost_per_outcome AS
SELECT
    tenant, workflow, period, period_start, billing_currency, calls, spend, outcomes,
    if(outcomes = 0, NULL, spend / greatest(outcomes, 1)) AS cost_per_outcome
FROM {{db}}.v_workflow_period;

-- 1b. Exact cost of the calls behind outcomes that name a trace or a
-- conversation (reads raw events: filter by tenant, workflow and time).
CREATE VIEW IF NOT EXISTS {{db}}.v_outcome_cost AS
SELECT
    tenant, workflow, outcome_id, outcome_type, event_time, local_date, outcomes, link,
    calls, spend, billing_currency,
    if(calls = 0 OR outcomes = 0, NULL, spend / greatest(outcomes, 1)) AS cost_per_outcome
FROM
(
    SELECT CAST(tenant AS String) AS tenant, CAST(workflow AS String) AS workflow, outcome_id,
           CAST(outcome_type AS String) AS outcome_type, event_time, local_date, count AS outcomes,
           if(trace_id != '', concat('trace:', trace_id), if(conversation_id != '', concat('conversation:', conversation_id), '')) AS link
    FROM {{db}}.outcomes
) AS o
ANY LEFT JOIN
(
    SELECT tenant, link, count() AS calls, sum(billed_effective_cost) AS spend, any(billing_currency) AS billing_currency
    FROM
    (
        SELECT CAST(tenant AS String) AS tenant,
               arrayJoin([concat('trace:', trace_id), concat('conversation:', conversation_id)]) AS link,
               billed_effective_cost, CAST(billing_currency AS String) AS billing_currency
        FROM {{db}}.priced_usage
        WHERE trace_id != '' OR conversation_id != ''
    )
    WHERE link NOT IN ('trace:', 'conversation:')
    GROUP BY tenant, link
) AS u USING (tenant, link);

-- 2. Forecast variance per workflow and month: actual - forecast, and in
-- percent of the forecast (NULL without a forecast).
CREATE VIEW IF NOT EXISTS {{db}}.v_forecast_variance AS
SELECT
    tenant, workflow, month, currency,
    sum(a) AS actual,
    sum(f) AS forecast,
    max(hf) AS has_forecast,
    actual - forecast AS variance,
    if(has_forecast = 0 OR forecast = 0, NULL, (actual - forecast) * 100 / if(forecast = 0, toDecimal128(1, 12), forecast)) AS variance_pct
FROM
(
    SELECT tenant, workflow, toStartOfMonth(local_date) AS month, billing_currency AS currency,
           sum(billed_effective_cost) AS a, toDecimal128(0, 12) AS f, toUInt8(0) AS hf
    FROM {{db}}.usage_daily GROUP BY tenant, workflow, month, currency
    UNION ALL
    SELECT tenant, workflow, month, currency, toDecimal128(0, 12) AS a, amount AS f, toUInt8(1) AS hf
    FROM {{db}}.forecasts FINAL
)
GROUP BY tenant, workflow, month, currency;

-- 3. Workflow profitability: cost per outcome against value per outcome,
-- net value (value - spend) and ROI (net value / spend).
CREATE VIEW IF NOT EXISTS {{db}}.v_workflow_profitability AS
SELECT
    tenant, workflow, period, period_start, billing_currency, spend, outcomes, outcome_value,
    if(outcomes = 0, NULL, spend / greatest(outcomes, 1)) AS cost_per_outcome,
    if(outcomes = 0, NULL, outcome_value / greatest(outcomes, 1)) AS value_per_outcome,
    outcome_value - spend AS net_value,
    if(spend = 0, NULL, (outcome_value - spend) / if(spend = 0, toDecimal128(1, 12), spend)) AS roi,
    value_other_currency_records
FROM {{db}}.v_workflow_period;

-- 4. Optimisation rate: change of cost per outcome, this quarter against
-- the previous one, in percent (negative = cheaper per outcome).
CREATE VIEW IF NOT EXISTS {{db}}.v_optimisation_rate AS
SELECT
    tenant, workflow, billing_currency, quarter,
    if(outcomes = 0, NULL, spend / greatest(outcomes, 1)) AS cost_per_outcome,
    addMonths(quarter, -3) AS previous_quarter,
    if(prev_outcomes = 0, NULL, prev_spend / greatest(prev_outcomes, 1)) AS previous_cost_per_outcome,
    if(outcomes = 0 OR prev_outcomes = 0 OR prev_spend = 0, NULL,
       ((spend / greatest(outcomes, 1)) - (prev_spend / greatest(prev_outcomes, 1))) * 100
       / if(prev_spend = 0, toDecimal128(1, 12), prev_spend / greatest(prev_outcomes, 1))) AS change_pct
FROM
(
    SELECT tenant, workflow, billing_currency, period_start AS quarter, spend, outcomes
    FROM {{db}}.v_workflow_period WHERE period = 'quarter'
) AS cur
ANY LEFT JOIN
(
    SELECT tenant, workflow, billing_currency, addMonths(period_start, 3) AS quarter, spend AS prev_spend, outcomes AS prev_outcomes
    FROM {{db}}.v_workflow_period WHERE period = 'quarter'
) AS prev USING (tenant, workflow, billing_currency, quarter);

-- 5a. Budget status: each active budget in each period the tenant has
-- usage in, with what was used against the amount. Budgets scoped to a
-- user_id are not covered (the rollups have no user dimension).
CREATE VIEW IF NOT EXISTS {{db}}.v_budget_status AS
SELECT
    tenant, budget_id, workflow, team, period, period_start, unit, amount, used,
    used <= amount AS within_budget,
    if(amount = 0, NULL, used * 100 / if(amount = 0, toDecimal128(1, 12), amount)) AS used_pct,
    if(toUInt32(ends_at) = 0, toDateTime(addMonths(last_month, 1), 'UTC'), ends_at) AS period_ends_at,
    multiIf(period_ends_at <= now(), 'closed', 'open') AS status
FROM
(
    SELECT tenant, budget_id, workflow, team, period, period_start, unit, any(amount) AS amount,
           addMonths(period_start, if(period = 'quarter', 2, 0)) AS last_month,
           sumIf(if(unit = 'tokens', toDecimal128(u_tokens, 12), u_spend),
                 (workflow = '' OR workflow = u_workflow) AND (team = '' OR team = u_team)
                 AND if(period = 'quarter', toStartOfQuarter(u_month), u_month) = period_start) AS used
    FROM
    (
        SELECT tenant, budget_id, workflow, team, period, amount, unit,
               if(period = 'quarter', toStartOfQuarter(p_month), p_month) AS period_start
        FROM
        (
            SELECT tenant, budget_id, workflow, team, period, amount, unit
            FROM {{db}}.budgets FINAL WHERE active = 1 AND user_id = ''
        ) AS b
        ALL INNER JOIN
        (
            SELECT DISTINCT tenant, toStartOfMonth(local_date) AS p_month FROM {{db}}.usage_daily
        ) AS pm USING (tenant)
    ) AS bp
    ALL INNER JOIN
    (
        SELECT tenant, workflow AS u_workflow, team AS u_team, toStartOfMonth(local_date) AS u_month,
               sum(billed_effective_cost) AS u_spend, sum(input_tokens + output_tokens) AS u_tokens
        FROM {{db}}.usage_daily GROUP BY tenant, u_workflow, u_team, u_month
    ) AS u USING (tenant)
    GROUP BY tenant, budget_id, workflow, team, period, period_start, unit
) AS s
ANY LEFT JOIN
(
    SELECT tenant, month AS last_month, ends_at FROM {{db}}.tenant_months FINAL
) AS tm USING (tenant, last_month);

-- 5b. Budget compliance: share of budgets (and of workflow budgets) within
-- their amount, per tenant and period; status 'open' is month (or
-- quarter) to date, 'closed' a finished period.
CREATE VIEW IF NOT EXISTS {{db}}.v_budget_compliance AS
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

-- Routing and prompt analysis: per model and prompt version and month,
-- cost per call beside cost per outcome. Outcomes are recorded per
-- workflow, so each model/prompt slice is allocated the workflow's outcomes
-- in proportion to its share of the workflow's tasks (a task that used
-- several slices counts in each).
CREATE VIEW IF NOT EXISTS {{db}}.v_spend_by_model_prompt AS
SELECT
    tenant, workflow, provider, model, prompt_template, prompt_version, month, billing_currency,
    calls, tasks, spend,
    spend / greatest(calls, 1) AS cost_per_call,
    if(tasks = 0, NULL, calls / tasks) AS calls_per_task,
    if(tasks = 0, NULL, spend / greatest(tasks, 1)) AS cost_per_task,
    workflow_tasks, workflow_outcomes,
    if(workflow_tasks = 0, 0, workflow_outcomes * tasks / workflow_tasks) AS outcomes_allocated,
    if(workflow_outcomes = 0 OR tasks = 0, NULL, spend * workflow_tasks / greatest(workflow_outcomes * tasks, 1)) AS cost_per_outcome
FROM
(
    SELECT tenant, workflow, provider, model, prompt_template, prompt_version, toStartOfMonth(local_date) AS month, billing_currency,
           sum(calls) AS calls, uniqMerge(tasks) AS tasks, sum(billed_effective_cost) AS spend
    FROM {{db}}.usage_daily
    GROUP BY tenant, workflow, provider, model, prompt_template, prompt_version, month, billing_currency
) AS s
ANY LEFT JOIN
(
    SELECT tenant, workflow, month, sum(t) AS workflow_tasks, sum(o) AS workflow_outcomes
    FROM
    (
        SELECT tenant, workflow, toStartOfMonth(local_date) AS month, uniqMerge(tasks) AS t, toUInt64(0) AS o
        FROM {{db}}.usage_daily GROUP BY tenant, workflow, month
        UNION ALL
        SELECT tenant, workflow, toStartOfMonth(local_date) AS month, toUInt64(0) AS t, sum(outcomes) AS o
        FROM {{db}}.outcomes_daily GROUP BY tenant, workflow, month
    )
    GROUP BY tenant, workflow, month
) AS w USING (tenant, workflow, month);

-- Cache savings: what cache reads saved against the uncached input price.
CREATE VIEW IF NOT EXISTS {{db}}.v_cache_savings AS
SELECT
    tenant, workflow, provider, model, month, billing_currency,
    c AS calls, it AS input_tokens, crt AS cache_read_input_tokens,
    if(it = 0, NULL, crt / it) AS cached_input_share,
    csp AS cache_savings_pricing_currency, cs AS cache_savings, sp AS spend,
    if(sp + cs = 0, NULL, cs * 100 / if(sp + cs = 0, toDecimal128(1, 12), sp + cs)) AS savings_pct
FROM
(
    SELECT tenant, workflow, provider, model, toStartOfMonth(local_date) AS month, billing_currency,
           sum(calls) AS c, sum(input_tokens) AS it, sum(cache_read_input_tokens) AS crt,
           sum(cache_savings) AS csp, sum(billed_cache_savings) AS cs, sum(billed_effective_cost) AS sp
    FROM {{db}}.usage_daily
    GROUP BY tenant, workflow, provider, model, month, billing_currency
);

-- Unattributed share: spend no rule or input attributed to a workflow,
-- team or prompt template, per tenant and month.
CREATE VIEW IF NOT EXISTS {{db}}.v_unattributed_share AS
SELECT
    tenant, month, billing_currency, spend,
    unattributed_workflow_spend, unattributed_team_spend, unattributed_prompt_spend,
    if(spend = 0, NULL, unattributed_workflow_spend * 100 / if(spend = 0, toDecimal128(1, 12), spend)) AS unattributed_workflow_pct,
    if(spend = 0, NULL, unattributed_team_spend * 100 / if(spend = 0, toDecimal128(1, 12), spend)) AS unattributed_team_pct,
    if(spend = 0, NULL, unattributed_prompt_spend * 100 / if(spend = 0, toDecimal128(1, 12), spend)) AS unattributed_prompt_pct
FROM
(
    SELECT tenant, toStartOfMonth(local_date) AS month, billing_currency,
           sum(billed_effective_cost) AS spend,
           sumIf(billed_effective_cost, workflow IN ('', 'unattributed')) AS unattributed_workflow_spend,
           sumIf(billed_effective_cost, team IN ('', 'unattributed')) AS unattributed_team_spend,
           sumIf(billed_effective_cost, prompt_template IN ('', 'unattributed')) AS unattributed_prompt_spend
    FROM {{db}}.usage_daily
    GROUP BY tenant, month, billing_currency
);
