-- 007_price_catalogue: the catalogue prices in force, synced by every
-- `tokenmeter migrate` from the pipeline's pricing config. One row per
-- provider, model, pricing tier and catalogue row (price_id, which names the
-- row's valid_from): a new catalogue version adds rows, earlier versions stay,
-- so priced_usage.price_id can always be joined to the rates it was priced at.
-- Rates are per million tokens in `currency` (0 = not priced separately).
CREATE TABLE IF NOT EXISTS {{db}}.price_catalogue
(
    provider                 String,
    model                    String,
    tier                     String,
    price_id                 String,
    version                  String,
    source                   String,
    valid_from               String,
    valid_to                 String,
    currency                 String,
    long_context_threshold   Int64,
    input_per_mtok           Decimal(38, 12),
    cache_read_per_mtok      Decimal(38, 12),
    cache_write_per_mtok     Decimal(38, 12),
    cache_write_1h_per_mtok  Decimal(38, 12),
    output_per_mtok          Decimal(38, 12),
    reasoning_per_mtok       Decimal(38, 12),
    synced_at                DateTime('UTC')
)
ENGINE = ReplacingMergeTree(synced_at)
ORDER BY (provider, model, tier, price_id);
