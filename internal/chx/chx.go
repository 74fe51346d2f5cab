// Package chx connects tokenmeter to ClickHouse through clickhouse-go/v2 and
// applies the migrations in schemas/clickhouse (see Migrate).
//
// Every connection sets allow_experimental_low_cardinality_type=1: ClickHouse
// 18.16 needs it for LowCardinality columns and newer servers accept and
// ignore it. With 18.16 over the native protocol, batch inserts must name
// their columns (`INSERT INTO t (a, b)`): the driver cannot learn the column
// list from that server otherwise, so every insert here does.
package chx

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Settings are the session settings a ClickHouse 18.x connection needs
// (Open sends them only to servers before 19.x). Values are ints: over the
// native protocol a pre-19.x server takes settings in the old binary form,
// which the driver only writes for ints and bools.
func Settings() clickhouse.Settings {
	return clickhouse.Settings{"allow_experimental_low_cardinality_type": 1}
}

// Options builds driver options for cfg with database as the default database.
func Options(cfg Config, database string) *clickhouse.Options {
	opts := &clickhouse.Options{
		Addr:        cfg.Addrs(),
		Auth:        clickhouse.Auth{Database: database, Username: cfg.Username, Password: cfg.Password},
		Settings:    Settings(),
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
// server answers. Queries name the database explicitly. The LowCardinality
// session setting is sent only to servers that need it (before 19.x), so a
// future server that drops the obsolete setting is not affected.
func Open(ctx context.Context, cfg Config) (driver.Conn, error) {
	opts := Options(cfg, "default")
	opts.Settings = clickhouse.Settings{}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse %s does not answer: %w", cfg.Addr, err)
	}
	v, err := ServerVersion(ctx, conn)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	if v.Major >= 19 {
		return conn, nil
	}
	_ = conn.Close()
	conn, err = clickhouse.Open(Options(cfg, "default"))
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

// HasSQLUsers reports whether the server manages users with CREATE USER
// (ClickHouse 20.4 and later). Older servers keep users in users.xml.
func (v Version) HasSQLUsers() bool { return v.Major > 20 || (v.Major == 20 && v.Minor >= 4) }

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
