package chx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	chschema "github.com/tokenmeter/tokenmeter/schemas/clickhouse"
)

// Migration is one schemas/clickhouse/NNN_name.sql file.
type Migration struct {
	Version uint32
	Name    string // file name
	SQL     string // with {{db}} still in place
}

// Checksum identifies the file's content.
func (m Migration) Checksum() string {
	s := sha256.Sum256([]byte(m.SQL))
	return hex.EncodeToString(s[:8])
}

var migrationName = regexp.MustCompile(`^(\d{3})_[a-z0-9_]+\.sql$`)

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	return loadMigrations(chschema.FS)
}

func loadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var out []Migration
	seen := map[uint32]string{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseUint(m[1], 10, 32)
		if prev, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[uint32(v)] = e.Name()
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: uint32(v), Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Statements renders a migration for database db (and, with cluster set,
// for a replicated cluster) and splits it into statements.
func (m Migration) Statements(db, cluster string) []string {
	sql := strings.ReplaceAll(m.SQL, "{{db}}", db)
	var out []string
	for _, st := range splitStatements(sql) {
		if cluster != "" {
			st = clusterize(st, db, cluster)
		}
		out = append(out, st)
	}
	return out
}

// splitStatements drops `--` comment lines and splits on `;` at line ends.
// Migrations keep string literals free of `;` + newline.
func splitStatements(sql string) []string {
	var b strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	var out []string
	for _, st := range strings.Split(b.String(), ";\n") {
		if st = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(st), ";")); st != "" {
			out = append(out, st)
		}
	}
	return out
}

var (
	createTable = regexp.MustCompile(`(?s)^(?:CREATE (?:TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS|DROP TABLE IF EXISTS|ALTER TABLE) (\S+)\.(\S+)`)
	mergeEngine = regexp.MustCompile(`ENGINE = (\w*)MergeTree\(([^)]*)\)`)
)

// clusterize rewrites a statement for a cluster: ON CLUSTER after the name,
// and *MergeTree(args) as Replicated*MergeTree('/clickhouse/tables/{shard}/db/table', '{replica}', args).
// The {shard} and {replica} macros come from each server's config (deploy/cluster/).
func clusterize(st, db, cluster string) string {
	m := createTable.FindStringSubmatchIndex(st)
	if m == nil {
		return st
	}
	table := st[m[4]:m[5]]
	st = st[:m[1]] + " ON CLUSTER " + cluster + st[m[1]:]
	return mergeEngine.ReplaceAllStringFunc(st, func(e string) string {
		sub := mergeEngine.FindStringSubmatch(e)
		args := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s', '{replica}'", db, table)
		if strings.TrimSpace(sub[2]) != "" {
			args += ", " + sub[2]
		}
		return fmt.Sprintf("ENGINE = Replicated%sMergeTree(%s)", sub[1], args)
	})
}

// MigrateResult says what Migrate did.
type MigrateResult struct {
	Server  Version
	Applied []string // migrations applied now
	Already []string // migrations applied before
	Changed []string // applied before, but the file differs now (not re-applied)
	Notes   []string // e.g. how the read-only user was handled
}

// Migrate creates cfg.Database when missing and applies every embedded
// migration not yet recorded in <db>.schema_migrations, in version order.
//
// It is safe to run twice and safe to rerun after a crash: every statement
// is CREATE ... IF NOT EXISTS, and a migration is recorded only after all
// its statements succeeded, so an interrupted migration is simply applied
// again. Two concurrent runs may both record a version; the table collapses
// such duplicates (ReplacingMergeTree).
func Migrate(ctx context.Context, conn driver.Conn, cfg Config) (*MigrateResult, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	ver, err := ServerVersion(ctx, conn)
	if err != nil {
		return nil, err
	}
	if err := CheckSupported(ver); err != nil {
		return nil, err
	}
	res := &MigrateResult{Server: ver}
	db := cfg.Database
	onCluster := ""
	if cfg.Cluster != "" {
		onCluster = " ON CLUSTER " + cfg.Cluster
	}
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db+onCluster); err != nil {
		return nil, fmt.Errorf("create database %s: %w", db, err)
	}
	ledger := Migration{SQL: `CREATE TABLE IF NOT EXISTS {{db}}.schema_migrations
(
    version     UInt32,
    name        String,
    checksum    String,
    applied_at  DateTime('UTC')
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version`}
	for _, st := range ledger.Statements(db, cfg.Cluster) {
		if err := conn.Exec(ctx, st); err != nil {
			return nil, fmt.Errorf("create %s.schema_migrations: %w", db, err)
		}
	}
	applied := map[uint32]string{}
	rows, err := conn.Query(ctx, "SELECT version, argMax(checksum, applied_at) FROM "+db+".schema_migrations GROUP BY version")
	if err != nil {
		return nil, fmt.Errorf("read %s.schema_migrations: %w", db, err)
	}
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read %s.schema_migrations: %w", db, err)
		}
		applied[v] = sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.schema_migrations: %w", db, err)
	}

	for _, m := range migs {
		if sum, ok := applied[m.Version]; ok {
			res.Already = append(res.Already, m.Name)
			if sum != m.Checksum() {
				res.Changed = append(res.Changed, m.Name)
			}
			continue
		}
		for i, st := range m.Statements(db, cfg.Cluster) {
			if err := conn.Exec(ctx, st); err != nil {
				return res, fmt.Errorf("migration %s statement %d (%s): %w", m.Name, i+1, firstLine(st), err)
			}
		}
		if err := record(ctx, conn, db, m); err != nil {
			return res, fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		res.Applied = append(res.Applied, m.Name)
	}

	note, err := ensureReader(ctx, conn, cfg)
	if err != nil {
		return res, err
	}
	res.Notes = append(res.Notes, note)
	return res, nil
}

// record notes a migration as applied.
func record(ctx context.Context, conn driver.Conn, db string, m Migration) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		return err
	}
	if err := b.Append(m.Version, m.Name, m.Checksum(), time.Now().UTC().Truncate(time.Second)); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

// ensureReader creates the analysts' read-only user where the server can.
func ensureReader(ctx context.Context, conn driver.Conn, cfg Config) (string, error) {
	if cfg.ReaderPassword == "" {
		return "read-only user: not managed (clickhouse.reader_password is empty)", nil
	}
	onCluster := ""
	if cfg.Cluster != "" {
		onCluster = " ON CLUSTER " + cfg.Cluster
	}
	stmts := []string{
		"CREATE USER IF NOT EXISTS " + cfg.ReaderUser + onCluster + " IDENTIFIED WITH sha256_password BY " + QuoteString(cfg.ReaderPassword) + " SETTINGS readonly = 1",
		"ALTER USER " + cfg.ReaderUser + onCluster + " IDENTIFIED WITH sha256_password BY " + QuoteString(cfg.ReaderPassword) + " SETTINGS readonly = 1",
		"GRANT" + onCluster + " SELECT ON " + cfg.Database + ".* TO " + cfg.ReaderUser,
	}
	for _, st := range stmts {
		if err := conn.Exec(ctx, st); err != nil {
			return "", fmt.Errorf("read-only user %s: %w", cfg.ReaderUser, err)
		}
	}
	return fmt.Sprintf("read-only user: %s has SELECT on %s (readonly=1)", cfg.ReaderUser, cfg.Database), nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}
