-- 1. Cost per business outcome, per workflow and month/quarter.
CREATE OR REPLACE VIEW {{db}}.v_cost_per_outcome{{onCluster}} AS
SELECT
    tenant, workflow, period, period_start, billing_currency, calls, spend, outcomes,
    if(outcomes = 0, NULL, spend / outcomes) AS cost_per_outcome
FROM {{db}}.v_workflow_period;

-- 1b. Exact cost of the calls behind outcomes that name a trace or a
-- conversation (reads raw events: filter by tenant, workflow and time).
CREATE OR REPLACE VIEW {{db}}.v_outcome_cost{{onCluster}} AS
SELECT
    o.tenant AS tenant, o.workflow AS workflow, o.outcome_id AS outcome_id, o.outcome_type AS outcome_type,
    o.event_time AS event_time, o.local_date AS local_date, o.outcomes AS outcomes, o.link AS link,
    c.calls AS calls, c.spend AS spend, c.billing_currency AS billing_currency,
    if(c.calls = 0 OR o.outcomes = 0, NULL, c.spend / o.outcomes) AS cost_per_outcome
FROM
(
    SELECT CAST(tenant AS String) AS tenant, CAST(workflow AS String) AS workflow, outcome_id,
           CAST(outcome_type AS String) AS outcome_type, event_time, local_date, count AS outcomes,
           multiIf(trace_id != '', concat('trace:', trace_id), conversation_id != '', concat('conversation:', conversation_id), '') AS link
    FROM {{db}}.outcomes
) AS o
LEFT JOIN
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
) AS c ON c.tenant = o.tenant AND c.link = o.link;

-- 2. Forecast variance per workflow and month: actual - forecast, and in
-- percent of the forecast (NULL without a forecast).
CREATE OR REPLACE VIEW {{db}}.v_forecast_variance{{onCluster}} AS
SELECT
    tenant, workflow, month, currency,
    sum(a) AS actual,
    sum(f) AS forecast,
    max(hf) AS has_forecast,
    actual - forecast AS variance,
    if(has_forecast = 0 OR forecast = 0, NULL, (actual - forecast) * 100 / forecast) AS variance_pct
FROM
(
    SELECT tenant, workflow, toStartOfMonth(local_date) AS month, billing_currency AS currency,
           sum(billed_effective_cost) AS a, CAST(0 AS {{money}}) AS f, toUInt8(0) AS hf
    FROM {{db}}.usage_daily GROUP BY tenant, workflow, month, currency
    UNION ALL
    SELECT tenant, workflow, month, currency, CAST(0 AS {{money}}) AS a, amount AS f, toUInt8(1) AS hf
    FROM {{db}}.forecasts FINAL
)
GROUP BY tenant, workflow, month, currency;

-- 3. Workflow profitability: cost per outcome against value per outcome,
-- net value (value - spend) and ROI (net value / spend).
CREATE OR REPLACE VIEW {{db}}.v_workflow_profitability{{onCluster}} AS
SELECT
    tenant, workflow, period, period_start, billing_currency, spend, outcomes, outcome_value,
    if(outcomes = 0, NULL, spend / outcomes) AS cost_per_outcome,
    if(outcomes = 0, NULL, outcome_value / outcomes) AS value_per_outcome,
    outcome_value - spend AS net_value,
    if(spend = 0, NULL, (outcome_value - spend) / spend) AS roi,
    value_other_currency_records
FROM {{db}}.v_workflow_period;

-- 4. Optimisation rate: change of cost per outcome, this quarter against
-- the previous one, in percent (negative = cheaper per outcome). The
-- previous quarter is the calendar quarter before (NULL when it had no row).
CREATE OR REPLACE VIEW {{db}}.v_optimisation_rate{{onCluster}} AS
SELECT
    tenant, workflow, billing_currency, quarter, cost_per_outcome, previous_quarter,
    if(has_previous, previous_cpo, NULL) AS previous_cost_per_outcome,
    if(has_previous AND cost_per_outcome IS NOT NULL AND previous_cpo IS NOT NULL AND previous_cpo != 0,
       (cost_per_outcome - previous_cpo) * 100 / previous_cpo, NULL) AS change_pct
FROM
(
    SELECT
        tenant, workflow, billing_currency, period_start AS quarter,
        if(outcomes = 0, NULL, spend / outcomes) AS cost_per_outcome,
        addMonths(period_start, -3) AS previous_quarter,
        lagInFrame(period_start) OVER w = previous_quarter AS has_previous,
        lagInFrame(if(outcomes = 0, NULL, spend / outcomes)) OVER w AS previous_cpo
    FROM {{db}}.v_workflow_period
    WHERE period = 'quarter'
    WINDOW w AS (PARTITION BY tenant, workflow, billing_currency ORDER BY period_start ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
);
