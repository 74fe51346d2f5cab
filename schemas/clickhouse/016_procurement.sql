-- 016_procurement: the buyer's side (docs/procurement.md): tables for what
-- the procurement commands write back (reconciliation results, correction
-- rows for re-priced closed periods, FOCUS 1.3 contract commitments). Its
-- views are repeatable, in views/70_procurement.sql.

-- One run of `bill reconcile -write`: a row per day, provider, project and
-- model with the explained causes as parallel arrays. A later run of the
-- same day replaces it (ReplacingMergeTree by run time; read with FINAL or
-- through v_bill_reconciliation).
CREATE TABLE IF NOT EXISTS {{db}}.bill_reconciliation{{onCluster}}
(
    day               Date,
    provider          LowCardinality(String),
    project           String,
    model             LowCardinality(String),
    currency          LowCardinality(String),
    metered           Decimal(38, 12),
    billed            Decimal(38, 12),
    difference        Decimal(38, 12),
    causes            Array(LowCardinality(String)),
    cause_amounts     Array(Decimal(38, 12)),
    residual          Decimal(38, 12),
    problem           String,
    run_at            DateTime64(3, 'UTC')
)
ENGINE = {{engine "bill_reconciliation" "ReplacingMergeTree" "run_at"}}
ORDER BY (day, provider, project, model);

-- Correction rows written when a closed period is re-priced: the re-priced
-- figure minus the original, FOCUS ChargeClass 'Correction'. priced_usage
-- (the originals) is never rewritten.
CREATE TABLE IF NOT EXISTS {{db}}.usage_corrections{{onCluster}}
(
    day               Date,
    tenant            LowCardinality(String),
    provider          LowCardinality(String),
    model             LowCardinality(String),
    pricing_tier      LowCardinality(String),
    price_id          LowCardinality(String),
    pricing_currency  LowCardinality(String),
    list_cost         Decimal(38, 12),
    contracted_cost   Decimal(38, 12),
    effective_cost    Decimal(38, 12),
    charge_class      LowCardinality(String),
    corrected_at      DateTime64(3, 'UTC')
)
ENGINE = {{engine "usage_corrections" "MergeTree"}}
ORDER BY (tenant, day, provider, model, corrected_at);

-- FOCUS 1.3 Contract Commitment dataset, written by `commitments focus -write`
-- (one row per commitment period; a rewrite of the same id replaces it).
CREATE TABLE IF NOT EXISTS {{db}}.contract_commitments{{onCluster}}
(
    BillingCurrency                 LowCardinality(String),
    ContractCommitmentCost          Decimal(38, 12),
    ContractCommitmentId            String,
    ContractCommitmentCategory      LowCardinality(String),
    ContractCommitmentDescription   String,
    ContractCommitmentPeriodEnd     DateTime('UTC'),
    ContractCommitmentPeriodStart   DateTime('UTC'),
    ContractCommitmentQuantity      Nullable(Decimal(38, 12)),
    ContractCommitmentType          LowCardinality(String),
    ContractCommitmentUnit          Nullable(String),
    ContractId                      String,
    ContractPeriodEnd               DateTime('UTC'),
    ContractPeriodStart             DateTime('UTC'),
    written_at                      DateTime64(3, 'UTC')
)
ENGINE = {{engine "contract_commitments" "ReplacingMergeTree" "written_at"}}
ORDER BY ContractCommitmentId;
