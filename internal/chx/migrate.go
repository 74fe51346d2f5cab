package chx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	chschema "github.com/tokenmeter/tokenmeter/schemas/clickhouse"
)

// The schema (schemas/clickhouse, see docs/clickhouse.md#changing-the-schema):
//
//   - Migrations, NNN_name.sql: applied once each, in version order, recorded
//     in <db>.schema_migrations with the checksum of their text. A migration
//     that changed after it was applied is an error: add a new one instead.
//   - Views, views/NN_name.sql: repeatable. Each statement is one
//     `CREATE OR REPLACE VIEW {{db}}.name{{onCluster}} AS …`, recorded in
//     <db>.schema_views by name and checksum, and re-created whenever its
//     text changes (or the view is missing). A view no longer in the files
//     is dropped.
//
// Both are text/template files rendered per target (Render): {{db}} is the
// database, {{onCluster}} is ` ON CLUSTER name` on a cluster and empty
// otherwise, {{engine "table" "SummingMergeTree" "args…"}} is the table
// engine (Replicated… with the table's Keeper path on a cluster), {{money}}
// is the money type ({{moneyScale}} its scale), {{range rollups}} gives the
// usage rollups (minute, hour, day) that share one definition and
// {{range list "a" "b"}} repeats a block per name.

// Migration is one schemas/clickhouse/NNN_name.sql file.
type Migration struct {
	Version uint32
	Name    string // file name
	SQL     string // template text
}

// View is one repeatable view statement of schemas/clickhouse/views.
type View struct {
	Name string // view name, without the database
	File string
	SQL  string // template text of the statement
}

// Target is where a schema is rendered for: a database, and the cluster
// (empty for a single server).
type Target struct {
	Database string
	Cluster  string
}

// checksumTarget renders text for checksums: a change of the text or of
// what the template functions produce (the money type, the rollups) changes
// the checksum; the database and cluster names do not.
var checksumTarget = Target{Database: "db"}

// Checksum identifies what the migration does.
func (m Migration) Checksum() (string, error) { return checksum(m.SQL) }

// Checksum identifies what the view statement does.
func (v View) Checksum() (string, error) { return checksum(v.SQL) }

func checksum(text string) (string, error) {
	r, err := Render(text, checksumTarget)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256([]byte(r))
	return hex.EncodeToString(s[:8]), nil
}

var (
	migrationName = regexp.MustCompile(`^(\d{3})_[a-z0-9_]+\.sql$`)
	viewFileName  = regexp.MustCompile(`^\d{2,3}_[a-z0-9_]+\.sql$`)
	viewStatement = regexp.MustCompile(`^CREATE OR REPLACE VIEW \{\{db\}\}\.([a-z0-9_]+)\{\{onCluster\}\} AS\s`)
)

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) { return loadMigrations(chschema.FS) }

// Views returns the embedded view statements in file and statement order
// (a view may read the views before it).
func Views() ([]View, error) { return loadViews(chschema.FS, "views") }

func loadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var out []Migration
	seen := map[uint32]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("schemas/clickhouse/%s: a migration is named NNN_name.sql (lower case)", e.Name())
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

func loadViews(fsys fs.FS, dir string) ([]View, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []View
	seen := map[string]string{}
	for _, e := range entries { // ReadDir sorts by name
		if !viewFileName.MatchString(e.Name()) {
			return nil, fmt.Errorf("schemas/clickhouse/%s/%s: a view file is named NN_name.sql (lower case)", dir, e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		for i, st := range SplitStatements(string(b)) {
			m := viewStatement.FindStringSubmatch(st)
			if m == nil {
				return nil, fmt.Errorf("schemas/clickhouse/%s/%s statement %d: must start `CREATE OR REPLACE VIEW {{db}}.name{{onCluster}} AS` (%s)", dir, e.Name(), i+1, firstLine(st))
			}
			if prev, dup := seen[m[1]]; dup {
				return nil, fmt.Errorf("view %s is defined in both %s and %s", m[1], prev, e.Name())
			}
			seen[m[1]] = e.Name()
			out = append(out, View{Name: m[1], File: e.Name(), SQL: st})
		}
	}
	return out, nil
}

// Rollup is one usage rollup: usage_minute, usage_hourly and usage_daily
// share every column but the time bucket.
type Rollup struct {
	Table  string // e.g. usage_hourly
	Bucket string // the time bucket column, e.g. hour
	Type   string // its type
	Expr   string // how it is computed from priced_usage
}

// Rollups are the usage rollups, finest first.
var Rollups = []Rollup{
	{Table: "usage_minute", Bucket: "minute", Type: "DateTime('UTC')", Expr: "toStartOfMinute(event_time)"},
	{Table: "usage_hourly", Bucket: "hour", Type: "DateTime('UTC')", Expr: "toStartOfHour(event_time)"},
	{Table: "usage_daily", Bucket: "local_date", Type: "Date", Expr: "local_date"},
}

// MoneyType is the ClickHouse type of every stored amount.
var MoneyType = fmt.Sprintf("Decimal(%d, %d)", chschema.MoneyPrecision, chschema.MoneyScale)

// Render expands a schema template for t (see the package comment above).
func Render(text string, t Target) (string, error) {
	funcs := template.FuncMap{
		"db": func() string { return t.Database },
		"onCluster": func() string {
			if t.Cluster == "" {
				return ""
			}
			return " ON CLUSTER " + t.Cluster
		},
		"engine": func(table, kind string, args ...string) (string, error) {
			if !identifier.MatchString(table) || !strings.HasSuffix(kind, "MergeTree") || !identifier.MatchString(kind) {
				return "", fmt.Errorf("engine %q %q: want a table name and a *MergeTree engine", table, kind)
			}
			if t.Cluster != "" {
				args = append([]string{fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s'", t.Database, table), "'{replica}'"}, args...)
				kind = "Replicated" + kind
			}
			return kind + "(" + strings.Join(args, ", ") + ")", nil
		},
		"money":      func() string { return MoneyType },
		"moneyScale": func() int { return chschema.MoneyScale },
		"list":       func(s ...string) []string { return s },
		"rollups":    func() []Rollup { return Rollups },
	}
	tpl, err := template.New("schema").Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tpl.Execute(&b, nil); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Statements renders the migration for t and splits it into statements.
func (m Migration) Statements(t Target) ([]string, error) {
	r, err := Render(m.SQL, t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Name, err)
	}
	return SplitStatements(r), nil
}

// Statement renders the view statement for t.
func (v View) Statement(t Target) (string, error) {
	r, err := Render(v.SQL, t)
	if err != nil {
		return "", fmt.Errorf("%s view %s: %w", v.File, v.Name, err)
	}
	return strings.TrimSpace(r), nil
}

// MigrateResult says what Migrate did.
type MigrateResult struct {
	Server  Version
	Applied []string // migrations applied now
	Already []string // migrations applied before
	Views   []string // views created or re-created now
	Dropped []string // views dropped (no longer in the schema)
	Notes   []string // e.g. how the read-only user was handled
}

// preBaselineCore is the first migration of the retired 18.16-era schema.
const preBaselineCore = "001_core.sql"

// ErrSchemaChanged is wrapped by Migrate's error when a migration differs
// from the one applied to the database.
var ErrSchemaChanged = errors.New("applied migration changed")

// ledgerSQL are the two bookkeeping tables of Migrate.
const ledgerSQL = `
CREATE TABLE IF NOT EXISTS {{db}}.schema_migrations{{onCluster}}
(
    version     UInt32,
    name        String,
    checksum    String,
    applied_at  DateTime64(3, 'UTC')
)
ENGINE = {{engine "schema_migrations" "ReplacingMergeTree" "applied_at"}}
ORDER BY version;

CREATE TABLE IF NOT EXISTS {{db}}.schema_views{{onCluster}}
(
    name        String,
    checksum    String,
    applied_at  DateTime64(3, 'UTC')
)
ENGINE = {{engine "schema_views" "ReplacingMergeTree" "applied_at"}}
ORDER BY name;
`

// Migrate creates cfg.Database when missing, applies every embedded
// migration not yet recorded in <db>.schema_migrations in version order,
// then (re-)creates every view whose text changed, and manages the read-only
// user.
//
// It refuses a server older than MinVersion, a database whose applied
// migrations differ from the embedded ones (ErrSchemaChanged), and one that
// holds migrations this binary does not know (written by a newer
// tokenmeter). It is safe to run twice and after a crash: tables are
// CREATE … IF NOT EXISTS, a migration is recorded only after all its
// statements succeeded, and views are CREATE OR REPLACE.
func Migrate(ctx context.Context, conn driver.Conn, cfg Config) (*MigrateResult, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	views, err := Views()
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
	t := Target{Database: db, Cluster: cfg.Cluster}
	onCluster := ""
	if cfg.Cluster != "" {
		onCluster = " ON CLUSTER " + cfg.Cluster
	}
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db+onCluster); err != nil {
		return nil, fmt.Errorf("create database %s: %w", db, err)
	}
	ledger := Migration{Name: "schema ledger", SQL: ledgerSQL}
	sts, err := ledger.Statements(t)
	if err != nil {
		return nil, err
	}
	for _, st := range sts {
		if err := conn.Exec(ctx, st); err != nil {
			return nil, fmt.Errorf("create %s schema ledger (%s): %w", db, firstLine(st), err)
		}
	}

	applied, err := readLedger(ctx, conn, "SELECT toString(version), argMax(name, applied_at), argMax(checksum, applied_at) FROM "+db+".schema_migrations GROUP BY version")
	if err != nil {
		return nil, err
	}
	if rec, ok := applied["1"]; ok && rec.name == preBaselineCore {
		return res, fmt.Errorf("%w: database %s was made by the schema before the current baseline (%s, written for ClickHouse 18.16); it is not upgraded: drop and recreate it (docs/clickhouse.md#changing-the-schema)", ErrSchemaChanged, db, preBaselineCore)
	}
	known := map[string]bool{}
	var pending []Migration
	var problems []error
	for _, m := range migs {
		v := strconv.FormatUint(uint64(m.Version), 10)
		known[v] = true
		sum, err := m.Checksum()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		rec, ok := applied[v]
		switch {
		case !ok:
			pending = append(pending, m)
		case rec.checksum != sum:
			problems = append(problems, fmt.Errorf("%w: %s was applied as %s with checksum %s, the embedded one has %s; "+
				"a migration is never edited after release (add a new NNN_name.sql); a database made by the pre-baseline schema must be recreated (docs/clickhouse.md#changing-the-schema)",
				ErrSchemaChanged, m.Name, rec.name, rec.checksum, sum))
		default:
			res.Already = append(res.Already, m.Name)
		}
	}
	for v, rec := range applied {
		if !known[v] {
			problems = append(problems, fmt.Errorf("%s.schema_migrations holds migration %s (%s) that this tokenmeter does not have: run the newer tokenmeter that applied it", db, v, rec.name))
		}
	}
	if len(problems) > 0 {
		return res, errors.Join(problems...)
	}

	for _, m := range pending {
		sts, err := m.Statements(t)
		if err != nil {
			return res, err
		}
		for i, st := range sts {
			if err := conn.Exec(ctx, st); err != nil {
				return res, fmt.Errorf("migration %s statement %d (%s): %w", m.Name, i+1, firstLine(st), err)
			}
		}
		sum, _ := m.Checksum()
		if err := record(ctx, conn, "INSERT INTO "+db+".schema_migrations (version, name, checksum, applied_at)", m.Version, m.Name, sum); err != nil {
			return res, fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		res.Applied = append(res.Applied, m.Name)
	}

	if err := applyViews(ctx, conn, t, views, res); err != nil {
		return res, err
	}

	note, err := ensureReader(ctx, conn, cfg)
	if err != nil {
		return res, err
	}
	res.Notes = append(res.Notes, note)
	return res, nil
}

// applyViews re-creates each view whose checksum differs from the one
// recorded, or that is missing, and drops recorded views no longer embedded.
func applyViews(ctx context.Context, conn driver.Conn, t Target, views []View, res *MigrateResult) error {
	db := t.Database
	recorded, err := readLedger(ctx, conn, "SELECT name, '', argMax(checksum, applied_at) FROM "+db+".schema_views GROUP BY name")
	if err != nil {
		return err
	}
	present := map[string]bool{}
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND engine = 'View'", db)
	if err != nil {
		return fmt.Errorf("list views of %s: %w", db, err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("list views of %s: %w", db, err)
		}
		present[n] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list views of %s: %w", db, err)
	}
	const ins = "INSERT INTO %s.schema_views (name, checksum, applied_at)"
	embedded := map[string]bool{}
	for _, v := range views {
		embedded[v.Name] = true
		sum, err := v.Checksum()
		if err != nil {
			return fmt.Errorf("%s view %s: %w", v.File, v.Name, err)
		}
		if rec, ok := recorded[v.Name]; ok && rec.checksum == sum && present[v.Name] {
			continue
		}
		st, err := v.Statement(t)
		if err != nil {
			return err
		}
		if err := conn.Exec(ctx, st); err != nil {
			return fmt.Errorf("view %s (%s): %w", v.Name, v.File, err)
		}
		if err := record(ctx, conn, fmt.Sprintf(ins, db), v.Name, sum); err != nil {
			return fmt.Errorf("record view %s: %w", v.Name, err)
		}
		res.Views = append(res.Views, v.Name)
	}
	var gone []string
	for name, rec := range recorded {
		if !embedded[name] && rec.checksum != "" {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	onCluster := ""
	if t.Cluster != "" {
		onCluster = " ON CLUSTER " + t.Cluster
	}
	for _, name := range gone {
		if err := conn.Exec(ctx, "DROP VIEW IF EXISTS "+db+"."+name+onCluster); err != nil {
			return fmt.Errorf("drop view %s: %w", name, err)
		}
		if err := record(ctx, conn, fmt.Sprintf(ins, db), name, ""); err != nil {
			return fmt.Errorf("record view %s: %w", name, err)
		}
		res.Dropped = append(res.Dropped, name)
	}
	return nil
}

type ledgerRow struct{ name, checksum string }

// readLedger reads (key, name, checksum) rows of strings, keyed by key.
func readLedger(ctx context.Context, conn driver.Conn, q string) (map[string]ledgerRow, error) {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read schema ledger: %w", err)
	}
	defer rows.Close()
	out := map[string]ledgerRow{}
	for rows.Next() {
		var key string
		var r ledgerRow
		if err := rows.Scan(&key, &r.name, &r.checksum); err != nil {
			return nil, fmt.Errorf("read schema ledger: %w", err)
		}
		out[key] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema ledger: %w", err)
	}
	return out, nil
}

// record appends one row to a schema ledger table; args are its columns but
// the last (applied_at, now).
func record(ctx context.Context, conn driver.Conn, insert string, args ...any) error {
	b, err := conn.PrepareBatch(ctx, insert)
	if err != nil {
		return err
	}
	if err := b.Append(append(args, time.Now().UTC())...); err != nil {
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
			return "", fmt.Errorf("read-only user %s: %w (a server whose users live only in its users file, as the local development engine, declares it there: docs/clickhouse.md#read-only-user-and-bi-tools)", cfg.ReaderUser, err)
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
