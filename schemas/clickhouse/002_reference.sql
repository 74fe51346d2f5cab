-- 002_reference: reference data synced from the pipeline config by
-- `tokenmeter migrate CONFIG` (tenants, their calendar, budgets) or imported
-- from a file (`tokenmeter forecasts import FILE`). Every table is a
-- ReplacingMergeTree keyed by what identifies a row, versioned by synced_at:
-- a re-sync replaces, and readers use FINAL.

CREATE TABLE IF NOT EXISTS {{db}}.tenants
(
    tenant              String,
    time_zone           String,
    reporting_currency  String,
    synced_at           DateTime('UTC')
)
ENGINE = ReplacingMergeTree(synced_at)
ORDER BY tenant;

-- One row per tenant and calendar month in the tenant's time zone, with the
-- month's bounds as UTC instants: views use it to tell month-to-date from
-- closed months.
CREATE TABLE IF NOT EXISTS {{db}}.tenant_months
(
    tenant      String,
    month       Date,
    quarter     Date,
    starts_at   DateTime('UTC'),
    ends_at     DateTime('UTC'),
    synced_at   DateTime('UTC')
)
ENGINE = ReplacingMergeTree(synced_at)
ORDER BY (tenant, month);

CREATE TABLE IF NOT EXISTS {{db}}.budgets
(
    budget_id   String,
    tenant      String,
    workflow    String,
    team        String,
    user_id     String,
    period      String,
    amount      Decimal(38, 12),
    unit        String,
    mode        String,
    owner       String,
    active      UInt8,
    synced_at   DateTime('UTC')
)
ENGINE = ReplacingMergeTree(synced_at)
ORDER BY (tenant, budget_id);

-- Monthly forecast per workflow, in the tenant's reporting currency.
CREATE TABLE IF NOT EXISTS {{db}}.forecasts
(
    tenant       String,
    workflow     String,
    month        Date,
    amount       Decimal(38, 12),
    currency     String,
    source       String,
    imported_at  DateTime('UTC')
)
ENGINE = ReplacingMergeTree(imported_at)
ORDER BY (tenant, workflow, month);
