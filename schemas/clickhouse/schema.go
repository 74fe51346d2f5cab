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
// The processor rounds each amount once, half-even, to MoneyScale places
// before it leaves for Kafka, so the sink stores it as is and ClickHouse
// sums it exactly; views never round again. Change both here only.
const (
	MoneyPrecision = 38
	MoneyScale     = 12
)
