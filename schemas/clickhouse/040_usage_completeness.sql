-- 040_usage_completeness: how much of each call's usage its source reported,
-- and whether its FX rate was stale (docs/ingest.md, "Instrumentation
-- libraries"; docs/pricing.md, FX). '' and 'complete' mean complete;
-- cache_unreported and output_overcounted: the cost is an upper bound;
-- cache_omitted: a lower bound; usage_missing: an unmetered call (cost unknown,
-- not zero). fx_stale = 1: the rate used was older than pricing.fx_max_age.
-- Rows stored before this migration read '' and 0 (the types' defaults).
-- (On a multi-shard cluster run these ALTERs ON CLUSTER; replicas of one shard
-- replicate them.)
ALTER TABLE {{db}}.priced_usage ADD COLUMN IF NOT EXISTS usage_completeness LowCardinality(String);
ALTER TABLE {{db}}.priced_usage ADD COLUMN IF NOT EXISTS fx_stale UInt8;
