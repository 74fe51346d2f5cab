// Package chx connects tokenmeter to ClickHouse through clickhouse-go/v2 and
// applies the migrations in schemas/clickhouse (see Migrate).
//
// Supported servers are ClickHouse 24.8 LTS and later (MinVersion; see
// docs/clickhouse.md). Batch inserts name their columns
// (`INSERT INTO t (a, b)`) so a table that gains a column keeps working with
// an older binary.
package chx

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Options builds driver options for cfg with database as the default database.
func Options(cfg Config, database string) *clickhouse.Options {
	opts := &clickhouse.Options{
		Addr:        cfg.Addrs(),
		Auth:        clickhouse.Auth{Database: database, Username: cfg.Username, Password: cfg.Password},
		DialTimeout: cfg.DialTimeout,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	}
	if cfg.Protocol == ProtocolHTTP {
		opts.Protocol = clickhouse.HTTP
	}
	if cfg.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return opts
}

// Open connects to ClickHouse with the `default` database as session
// default (the tokenmeter database may not exist yet) and checks that the
// server answers. Queries name the database explicitly.
func Open(ctx context.Context, cfg Config) (driver.Conn, error) {
	conn, err := clickhouse.Open(Options(cfg, "default"))
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse %s does not answer: %w", cfg.Addr, err)
	}
	return conn, nil
}

// Version is a server's major.minor version.
type Version struct{ Major, Minor uint64 }

// MinVersion is the oldest ClickHouse the schema is written for: 24.8, the
// oldest LTS release still in use (docs/clickhouse.md). Anything the schema
// uses that is newer than this must be gated on the server's version.
var MinVersion = Version{Major: 24, Minor: 8}

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool {
	return v.Major < o.Major || (v.Major == o.Major && v.Minor < o.Minor)
}

// CheckSupported returns an error naming the version when v is older than
// MinVersion.
func CheckSupported(v Version) error {
	if v.Less(MinVersion) {
		return fmt.Errorf("ClickHouse %s is not supported: tokenmeter needs %s or later (docs/clickhouse.md)", v, MinVersion)
	}
	return nil
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// ServerVersion asks the server for its version.
func ServerVersion(ctx context.Context, conn driver.Conn) (Version, error) {
	var s string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&s); err != nil {
		return Version{}, fmt.Errorf("server version: %w", err)
	}
	var v Version
	parts := strings.SplitN(s, ".", 3)
	if len(parts) >= 2 {
		_, _ = fmt.Sscan(parts[0], &v.Major)
		_, _ = fmt.Sscan(parts[1], &v.Minor)
	}
	return v, nil
}

// QuoteString quotes s as a ClickHouse string literal.
func QuoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}
