-- Levers (repeatable views, re-created by `tokenmeter migrate` when they change).
-- Levers: routing, prompts, caching and the drivers of spend, for analysts
-- and `tokenmeter levers` (docs/levers.md). Costs are billed effective costs
-- in the tenant's billing currency unless a column says otherwise; months
-- and days are the tenant's calendar (local_date).

-- Routing profile: each workflow's model mix per month, with the previous
-- month's shares beside it so a routing change shows as a moved share.
CREATE OR REPLACE VIEW {{db}}.v_model_mix{{onCluster}} AS
SELECT
    tenant, workflow, month, billing_currency, provider, model, calls, spend,
    calls / sum(calls) OVER w AS call_share,
    if(sum(spend) OVER w = 0, NULL, spend / sum(spend) OVER w) AS spend_share,
    tokens / calls AS tokens_per_call
FROM
(
    SELECT tenant, workflow, toStartOfMonth(local_date) AS month, billing_currency, provider, model,
           sum(calls) AS calls, sum(billed_effective_cost) AS spend, sum(input_tokens + output_tokens) AS tokens
    FROM {{db}}.usage_daily
    GROUP BY tenant, workflow, month, billing_currency, provider, model
)
WINDOW w AS (PARTITION BY tenant, workflow, month, billing_currency);

-- Calls whose shape suggests a small model would do: short outputs
-- (at most 64 output tokens, none of them reasoning) or classification-like
-- operations, per workflow, prompt template and model, ranked by the spend on
-- those calls. The criteria are in the `criteria` column.
CREATE OR REPLACE VIEW {{db}}.v_small_model_candidates{{onCluster}} AS
SELECT
    tenant, workflow, prompt_template, provider, model, month, billing_currency,
    calls, spend, candidate_calls, candidate_spend,
    candidate_calls / calls AS candidate_share,
    candidate_output_tokens / greatest(candidate_calls, 1) AS candidate_output_tokens_per_call,
    'output_tokens <= 64 AND reasoning_tokens = 0, or operation in (classify, classification, moderation, rerank, embeddings)' AS criteria
FROM
(
    SELECT tenant, workflow, prompt_template, provider, model, toStartOfMonth(local_date) AS month, billing_currency,
           count() AS calls, sum(billed_effective_cost) AS spend,
           countIf(is_candidate) AS candidate_calls,
           sumIf(billed_effective_cost, is_candidate) AS candidate_spend,
           sumIf(output_tokens, is_candidate) AS candidate_output_tokens
    FROM
    (
        SELECT *, (output_tokens <= 64 AND reasoning_tokens = 0)
                  OR lower(operation) IN ('classify', 'classification', 'moderation', 'rerank', 'embeddings') AS is_candidate
        FROM {{db}}.priced_usage
    )
    GROUP BY tenant, workflow, prompt_template, provider, model, month, billing_currency
)
WHERE candidate_calls > 0
ORDER BY candidate_spend DESC;

-- Prompt templates and versions: tokens and cost per call and per outcome,
-- against the version of the same template seen before it. Outcomes are
-- recorded per workflow, so each day's outcomes are allocated to the
-- versions used that day in proportion to their calls. A version is flagged
-- when tokens per call or cost per outcome rose by 10% or more over the
-- previous version; extra_cost is the rise in cost per outcome times the
-- outcomes allocated to the version (what the change cost over the period).
CREATE OR REPLACE VIEW {{db}}.v_prompt_versions{{onCluster}} AS
SELECT
    tenant, workflow, prompt_template, prompt_version, billing_currency,
    first_seen, last_seen, calls, spend, input_tokens_per_call, output_tokens_per_call,
    cost_per_call, outcomes_allocated, cost_per_outcome,
    previous_version, previous_tokens_per_call, previous_cost_per_call, previous_cost_per_outcome,
    if(previous_tokens_per_call = 0, NULL,
       (input_tokens_per_call + output_tokens_per_call) / previous_tokens_per_call - 1) AS tokens_per_call_change,
    if(previous_cost_per_outcome IS NULL OR previous_cost_per_outcome = 0 OR cost_per_outcome IS NULL, NULL,
       cost_per_outcome / previous_cost_per_outcome - 1) AS cost_per_outcome_change,
    toBool(previous_version != '' AND (ifNull(tokens_per_call_change, 0) >= 0.1 OR ifNull(cost_per_outcome_change, 0) >= 0.1)) AS flagged,
    if(cost_per_outcome IS NULL OR previous_cost_per_outcome IS NULL, NULL,
       (cost_per_outcome - previous_cost_per_outcome) * outcomes_allocated) AS extra_cost
FROM
(
    SELECT *,
        lagInFrame(prompt_version, 1, '') OVER t AS previous_version,
        lagInFrame(input_tokens_per_call + output_tokens_per_call, 1, 0) OVER t AS previous_tokens_per_call,
        lagInFrame(toNullable(cost_per_call), 1) OVER t AS previous_cost_per_call,
        lagInFrame(cost_per_outcome, 1) OVER t AS previous_cost_per_outcome
    FROM
    (
        SELECT tenant, workflow, prompt_template, prompt_version, billing_currency,
               min(local_date) AS first_seen, max(local_date) AS last_seen,
               sum(v_calls) AS calls, sum(v_spend) AS spend,
               sum(v_in) / sum(v_calls) AS input_tokens_per_call,
               sum(v_out) / sum(v_calls) AS output_tokens_per_call,
               sum(v_spend) / sum(v_calls) AS cost_per_call,
               sum(v_outcomes) AS outcomes_allocated,
               if(sum(v_outcomes) = 0, NULL, sum(v_spend) / sum(v_outcomes)) AS cost_per_outcome
        FROM
        (
            SELECT u.tenant AS tenant, u.workflow AS workflow, u.prompt_template AS prompt_template, u.prompt_version AS prompt_version,
                   u.billing_currency AS billing_currency, u.local_date AS local_date,
                   u.calls AS v_calls, u.spend AS v_spend, u.inp AS v_in, u.outp AS v_out,
                   toDecimal128(ifNull(o.outcomes, 0), 12) * u.calls / d.day_calls AS v_outcomes
            FROM
            (
                SELECT tenant, workflow, prompt_template, prompt_version, billing_currency, local_date,
                       sum(calls) AS calls, sum(billed_effective_cost) AS spend, sum(input_tokens) AS inp, sum(output_tokens) AS outp
                FROM {{db}}.usage_daily
                WHERE prompt_template != ''
                GROUP BY tenant, workflow, prompt_template, prompt_version, billing_currency, local_date
            ) AS u
            INNER JOIN
            (
                SELECT tenant, workflow, local_date, sum(calls) AS day_calls
                FROM {{db}}.usage_daily GROUP BY tenant, workflow, local_date
            ) AS d ON d.tenant = u.tenant AND d.workflow = u.workflow AND d.local_date = u.local_date
            LEFT JOIN
            (
                SELECT tenant, workflow, local_date, sum(outcomes) AS outcomes
                FROM {{db}}.outcomes_daily GROUP BY tenant, workflow, local_date
            ) AS o ON o.tenant = u.tenant AND o.workflow = u.workflow AND o.local_date = u.local_date
        )
        GROUP BY tenant, workflow, prompt_template, prompt_version, billing_currency
    )
    WINDOW t AS (PARTITION BY tenant, workflow, prompt_template, billing_currency ORDER BY first_seen, prompt_version
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
);

-- Long-context exposure: calls billed at a long-context tier (their input
-- crossed the model's threshold, so every class of the request was billed at
-- the higher rates), per workflow, model and month. What the same calls would
-- have cost below the threshold is computed by `tokenmeter levers
-- long-context` with the pricing engine.
CREATE OR REPLACE VIEW {{db}}.v_long_context_exposure{{onCluster}} AS
SELECT
    tenant, workflow, provider, model, toStartOfMonth(local_date) AS month, billing_currency,
    count() AS calls,
    countIf(endsWith(pricing_tier, '_long_context')) AS long_calls,
    sumIf(billed_effective_cost, endsWith(pricing_tier, '_long_context')) AS long_spend,
    sum(billed_effective_cost) AS spend,
    sumIf(input_tokens, endsWith(pricing_tier, '_long_context')) AS long_input_tokens,
    long_calls / calls AS long_call_share
FROM {{db}}.priced_usage
GROUP BY tenant, workflow, provider, model, month, billing_currency
HAVING long_calls > 0;

-- Caching: hit rate (cache reads over input tokens) and savings realised
-- against the uncached price, per workflow, prompt template, model and
-- month, with the spend on cache writes and the part of it never read back.
-- A write counts as read back when a later call of the same conversation
-- (else the same trace) read from the cache within the write's lifetime:
-- 5 minutes, or 1 hour for 1-hour writes. Writes of calls with neither id
-- cannot be followed and are counted in unknown_write_spend.
CREATE OR REPLACE VIEW {{db}}.v_cache_efficiency{{onCluster}} AS
SELECT
    tenant, workflow, prompt_template, provider, model, month, billing_currency,
    calls, input_tokens, cache_read_input_tokens,
    if(input_tokens = 0, NULL, cache_read_input_tokens / input_tokens) AS hit_rate,
    cache_savings, write_spend, unread_write_spend, unknown_write_spend, spend
FROM
(
    SELECT tenant, workflow, prompt_template, provider, model, toStartOfMonth(local_date) AS month, billing_currency,
           count() AS calls, sum(input_tokens) AS input_tokens, sum(cache_read_input_tokens) AS cache_read_input_tokens,
           sum(billed_cache_savings) AS cache_savings,
           sum(cost_cache_write * fx_rate) AS write_spend,
           sumIf(cost_cache_write * fx_rate, cache_write_input_tokens > 0 AND chain != ''
                 AND (next_read_at IS NULL
                      OR next_read_at > event_time + toIntervalSecond(if(cache_write_1h_input_tokens > 0, 3600, 300)))) AS unread_write_spend,
           sumIf(cost_cache_write * fx_rate, cache_write_input_tokens > 0 AND chain = '') AS unknown_write_spend,
           sum(billed_effective_cost) AS spend
    FROM
    (
        SELECT *, if(conversation_id != '', conversation_id, trace_id) AS chain,
               min(if(cache_read_input_tokens > 0, event_time, NULL)) OVER (
                   PARTITION BY tenant, if(conversation_id != '', conversation_id, trace_id)
                   ORDER BY event_time, event_id ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS next_read_at
        FROM {{db}}.priced_usage
    )
    GROUP BY tenant, workflow, prompt_template, provider, model, month, billing_currency
);

-- Where caching is absent: workflows and models with input-heavy calls (at
-- least 1,000 input tokens per call on average) and no cache reads at all in
-- the month, on a model whose catalogue price for cache reads is below its
-- input price, ranked by what a 50% hit rate would have saved:
-- uncached input tokens x 0.5 x (input rate - cache-read rate), in the
-- pricing currency (USD) and, at the month's average FX rate, in the billing
-- currency. The 50% is the stated assumption; `tokenmeter levers caching
-- --hit-rate` recomputes at another.
CREATE OR REPLACE VIEW {{db}}.v_cache_absent{{onCluster}} AS
SELECT
    u.tenant AS tenant, u.workflow AS workflow, u.provider AS provider, u.model AS model, u.month AS month,
    u.billing_currency AS billing_currency, u.calls AS calls, u.input_tokens AS input_tokens,
    u.input_tokens / u.calls AS input_tokens_per_call,
    p.input_per_mtok AS input_per_mtok, p.cache_read_per_mtok AS cache_read_per_mtok,
    toDecimal128(0.5, 2) AS assumed_hit_rate,
    u.uncached_input_tokens * toDecimal128(0.5, 2) * (p.input_per_mtok - p.cache_read_per_mtok) / 1000000 AS saving_pricing_currency,
    saving_pricing_currency * u.avg_fx_rate AS saving
FROM
(
    SELECT tenant, workflow, provider, model, toStartOfMonth(local_date) AS month, billing_currency,
           count() AS calls, sum(input_tokens) AS input_tokens, sum(uncached_input_tokens) AS uncached_input_tokens,
           sum(cache_read_input_tokens) AS reads, avg(fx_rate) AS avg_fx_rate, any(price_id) AS price_id
    FROM {{db}}.priced_usage
    GROUP BY tenant, workflow, provider, model, month, billing_currency
    HAVING reads = 0 AND input_tokens >= 1000 * calls
) AS u
INNER JOIN (SELECT * FROM {{db}}.price_catalogue FINAL) AS p ON p.price_id = u.price_id
WHERE p.cache_read_per_mtok > 0 AND p.cache_read_per_mtok < p.input_per_mtok
ORDER BY saving DESC;

-- Drivers of spend per workflow and day, the series the anomaly detector
-- watches (`tokenmeter levers anomalies`). NULL where a driver is undefined
-- that day (no calls, no input, no outcomes).
CREATE OR REPLACE VIEW {{db}}.v_driver_daily{{onCluster}} AS
SELECT
    u.tenant AS tenant, u.workflow AS workflow, u.local_date AS local_date, u.billing_currency AS billing_currency,
    u.calls AS calls, u.spend AS spend,
    (u.input_tokens + u.output_tokens) / u.calls AS tokens_per_call,
    if(u.input_tokens = 0, NULL, u.cache_read_input_tokens / u.input_tokens) AS cache_hit_rate,
    if(u.output_tokens = 0, NULL, u.reasoning_tokens / u.output_tokens) AS reasoning_share,
    u.top_model AS top_model, u.top_model_calls / u.calls AS top_model_share,
    if(ifNull(o.outcomes, 0) = 0, NULL, u.calls / o.outcomes) AS calls_per_outcome,
    u.prompt_versions AS prompt_versions, u.models AS models
FROM
(
    SELECT tenant, workflow, local_date, billing_currency,
           sum(c) AS calls, sum(s) AS spend, sum(i) AS input_tokens, sum(o) AS output_tokens,
           sum(cr) AS cache_read_input_tokens, sum(r) AS reasoning_tokens,
           argMax(m, c) AS top_model, max(c) AS top_model_calls,
           groupUniqArrayArray(vs) AS prompt_versions, groupUniqArray(m) AS models
    FROM
    (
        SELECT tenant, workflow, local_date, billing_currency, provider || '/' || model AS m,
               sum(calls) AS c, sum(billed_effective_cost) AS s, sum(input_tokens) AS i, sum(output_tokens) AS o,
               sum(cache_read_input_tokens) AS cr, sum(reasoning_tokens) AS r,
               groupUniqArray(prompt_template || '@' || prompt_version) AS vs
        FROM {{db}}.usage_daily
        GROUP BY tenant, workflow, local_date, billing_currency, m
    )
    GROUP BY tenant, workflow, local_date, billing_currency
) AS u
LEFT JOIN
(
    SELECT tenant, workflow, local_date, sum(outcomes) AS outcomes
    FROM {{db}}.outcomes_daily GROUP BY tenant, workflow, local_date
) AS o ON o.tenant = u.tenant AND o.workflow = u.workflow AND o.local_date = u.local_date;

-- The inputs of the lever decomposition of cost per outcome
-- (`tokenmeter levers decompose`), for any period of tenant-local days
-- [from, to): per workflow and model, calls, tokens by class and billed cost
-- by class (the units column takes what the token classes leave, so the
-- classes add up exactly to the billed spend), with the workflow's outcomes
-- in the same days. A parameterized view:
--   SELECT * FROM tokenmeter.v_lever_inputs(from = '2026-10-01', to = '2027-01-01')
CREATE OR REPLACE VIEW {{db}}.v_lever_inputs{{onCluster}} AS
SELECT
    u.tenant AS tenant, u.workflow AS workflow, u.billing_currency AS billing_currency,
    u.provider AS provider, u.model AS model, u.calls AS calls,
    u.input_tokens AS input_tokens, u.cache_read_input_tokens AS cache_read_input_tokens,
    u.cache_write_input_tokens AS cache_write_input_tokens, u.output_tokens AS output_tokens,
    u.cost_uncached_input AS cost_uncached_input, u.cost_cache_read AS cost_cache_read,
    u.cost_cache_write AS cost_cache_write, u.cost_output AS cost_output,
    u.spend - u.cost_uncached_input - u.cost_cache_read - u.cost_cache_write - u.cost_output AS cost_units,
    u.spend AS spend, ifNull(o.outcomes, 0) AS outcomes
FROM
(
    SELECT tenant, workflow, billing_currency, provider, model,
           count() AS calls, sum(input_tokens) AS input_tokens, sum(cache_read_input_tokens) AS cache_read_input_tokens,
           sum(cache_write_input_tokens) AS cache_write_input_tokens, sum(output_tokens) AS output_tokens,
           sum(cost_input * fx_rate) AS cost_uncached_input, sum(cost_cache_read * fx_rate) AS cost_cache_read,
           sum(cost_cache_write * fx_rate) AS cost_cache_write, sum((cost_output + cost_reasoning) * fx_rate) AS cost_output,
           sum(billed_effective_cost) AS spend
    FROM {{db}}.priced_usage
    WHERE local_date >= {from:Date} AND local_date < {to:Date}
    GROUP BY tenant, workflow, billing_currency, provider, model
) AS u
LEFT JOIN
(
    SELECT tenant, workflow, sum(outcomes) AS outcomes
    FROM {{db}}.outcomes_daily
    WHERE local_date >= {from:Date} AND local_date < {to:Date}
    GROUP BY tenant, workflow
) AS o ON o.tenant = u.tenant AND o.workflow = u.workflow;
