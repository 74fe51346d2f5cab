-- 009_sink_ledger: the sink's exactly-once ledger (internal/sink/ledger.go)
-- and the deduplication windows its insert tokens rely on.
--
-- One current entry per topic-partition (ReplacingMergeTree by version: a
-- later generation, a later range, done over pending). An entry names the
-- last block that covered the partition, the block's ranges over every
-- partition it holds, and whether it is stored (done) or may be stored only
-- partly (pending: the sink writes it again, same rows and token, before
-- consuming the partition). Read it with FINAL:
--   SELECT kafka_topic, kafka_partition, state, last_offset FROM sink_ledger FINAL
CREATE TABLE IF NOT EXISTS {{db}}.sink_ledger
(
    kafka_topic        String,
    kafka_partition    Int32,
    generation         UInt32,
    first_offset       Int64,
    last_offset        Int64,
    state              Enum8('pending' = 1, 'done' = 2),
    block_id           String,
    block_topics       Array(String),
    block_partitions   Array(Int32),
    block_first        Array(Int64),
    block_last         Array(Int64),
    block_generations  Array(UInt32),
    topic_id           String,
    sink_group         String,
    written_at         DateTime64(3, 'UTC'),
    version            UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (kafka_topic, kafka_partition);

-- insert_deduplication_token only de-duplicates in tables that remember
-- recent blocks: Replicated* tables do (replicated_deduplication_window),
-- plain MergeTree tables only with this setting. Every table the sink
-- inserts into and every materialized view target fed by them keeps the
-- last 10000 blocks: a block written again (after a failure or kill -9)
-- within 10000 inserts into the same table is stored once.
ALTER TABLE {{db}}.priced_usage MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {{db}}.outcomes MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {{db}}.dlq MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {{db}}.alerts MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {{db}}.usage_daily MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {{db}}.usage_hourly MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {{db}}.usage_minute MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {{db}}.outcomes_daily MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {{db}}.sink_offsets MODIFY SETTING non_replicated_deduplication_window = 10000;
