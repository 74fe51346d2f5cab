// Package chschema embeds tokenmeter's ClickHouse schema: ordered migrations
// (NNN_name.sql, each applied once) and repeatable views (views/*.sql,
// re-created when their text changes). internal/chx renders and applies
// them; docs/clickhouse.md#changing-the-schema says how to add either.
package chschema

import "embed"

// FS holds every migration and view file.
//
//go:embed *.sql views/*.sql
var FS embed.FS

// Money is how every amount is stored: Decimal(MoneyPrecision, MoneyScale).
// internal/money's fixed point (money.Scale) is this scale: the processor
// rounds each amount once, half-even, to it before it leaves for Kafka, so
// the sink stores it as is and ClickHouse sums it exactly; views never round
// again. Change it here only.
const (
	MoneyPrecision = 38
	MoneyScale     = 12
)
