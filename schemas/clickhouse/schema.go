// Package chschema embeds tokenmeter's ClickHouse migrations
// (NNN_name.sql, applied in order by `tokenmeter migrate`; see internal/chx).
package chschema

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
