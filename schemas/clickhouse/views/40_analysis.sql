-- Routing and prompt analysis: per model and prompt version and month,
-- cost per call beside cost per outcome. Outcomes are recorded per
-- workflow, so each model/prompt slice is allocated the workflow's outcomes
-- in proportion to its share of the workflow's tasks (a task that used
-- several slices counts in each).
CREATE OR REPLACE VIEW {{db}}.v_spend_by_model_prompt{{onCluster}} AS
SELECT
    s.tenant AS tenant, s.workflow AS workflow, s.provider AS provider, s.model AS model,
    s.prompt_template AS prompt_template, s.prompt_version AS prompt_version, s.month AS month,
    s.billing_currency AS billing_currency,
    s.calls AS calls, s.tasks AS tasks, s.spend AS spend,
    s.spend / greatest(s.calls, 1) AS cost_per_call,
    if(s.tasks = 0, NULL, s.calls / s.tasks) AS calls_per_task,
    if(s.tasks = 0, NULL, s.spend / s.tasks) AS cost_per_task,
    w.workflow_tasks AS workflow_tasks, w.workflow_outcomes AS workflow_outcomes,
    if(w.workflow_tasks = 0, 0, w.workflow_outcomes * s.tasks / w.workflow_tasks) AS outcomes_allocated,
    if(w.workflow_outcomes = 0 OR s.tasks = 0, NULL, s.spend * w.workflow_tasks / (w.workflow_outcomes * s.tasks)) AS cost_per_outcome
FROM
(
    SELECT tenant, workflow, provider, model, prompt_template, prompt_version, toStartOfMonth(local_date) AS month, billing_currency,
           sum(calls) AS calls, uniqMerge(tasks) AS tasks, sum(billed_effective_cost) AS spend
    FROM {{db}}.usage_daily
    GROUP BY tenant, workflow, provider, model, prompt_template, prompt_version, month, billing_currency
) AS s
LEFT JOIN
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
) AS w ON w.tenant = s.tenant AND w.workflow = s.workflow AND w.month = s.month;

-- Cache savings: what cache reads saved against the uncached input price.
CREATE OR REPLACE VIEW {{db}}.v_cache_savings{{onCluster}} AS
SELECT
    tenant, workflow, provider, model, month, billing_currency,
    c AS calls, it AS input_tokens, crt AS cache_read_input_tokens,
    if(it = 0, NULL, crt / it) AS cached_input_share,
    csp AS cache_savings_pricing_currency, cs AS cache_savings, sp AS spend,
    if(sp + cs = 0, NULL, cs * 100 / (sp + cs)) AS savings_pct
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
CREATE OR REPLACE VIEW {{db}}.v_unattributed_share{{onCluster}} AS
SELECT
    tenant, month, billing_currency, spend,
    unattributed_workflow_spend, unattributed_team_spend, unattributed_prompt_spend,
    if(spend = 0, NULL, unattributed_workflow_spend * 100 / spend) AS unattributed_workflow_pct,
    if(spend = 0, NULL, unattributed_team_spend * 100 / spend) AS unattributed_team_pct,
    if(spend = 0, NULL, unattributed_prompt_spend * 100 / spend) AS unattributed_prompt_pct
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
