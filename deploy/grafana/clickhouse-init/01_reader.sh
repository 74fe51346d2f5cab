#!/bin/bash
# Runs once, on the first start of the clickhouse/clickhouse-server image
# (docker-entrypoint-initdb.d). Creates the read-only user analysts and
# Grafana use; DESIGN.md: "a read-only user". tokenmeter migrate creates the
# tokenmeter database and its tables; SELECT on tokenmeter.* may be granted
# before the database exists.
set -euo pipefail
clickhouse client --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" --multiquery <<SQL
CREATE USER IF NOT EXISTS tokenmeter_reader IDENTIFIED WITH sha256_password BY '${CLICKHOUSE_READER_PASSWORD:-reader}'
    SETTINGS readonly = 1;
GRANT SELECT ON tokenmeter.* TO tokenmeter_reader;
SQL
