// Package testenv gives tests the real services they need: an Apache Kafka
// broker and a ClickHouse server, found through the same environment
// variables the binary uses.
//
//	KAFKA_BROKERS               comma-separated host:port list
//	CLICKHOUSE_ADDR             host:port of ClickHouse's native protocol
//	CLICKHOUSE_HTTP_ADDR        host:port of ClickHouse's HTTP interface
//	TOKENMETER_REQUIRE_SERVICES 1 turns "service not configured" from a skip into a failure
//
// `make test` starts both services (deploy/local/test.sh) and sets all four,
// so there integration tests run and cannot be skipped by accident. A bare
// `go test ./...` without the services skips them with a message.
//
// Tests share the services, so every helper here hands out names that are
// unique to the test: a fresh ClickHouse database per call, a topic prefix
// per test.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Environment variable names; deploy/local/*.sh and docker-compose.yml use the same.
const (
	EnvKafkaBrokers       = "KAFKA_BROKERS"
	EnvClickHouseAddr     = "CLICKHOUSE_ADDR"
	EnvClickHouseHTTPAddr = "CLICKHOUSE_HTTP_ADDR"
	EnvRequireServices    = "TOKENMETER_REQUIRE_SERVICES"
	EnvVenvDir            = "TOKENMETER_VENV_DIR"
)

// ClickHouseSettings are the session settings every test connection uses
// (none today: tokenmeter's own connections, internal/chx, set none either).
var ClickHouseSettings = clickhouse.Settings{}

// RequireServices reports whether missing services must fail tests rather
// than skip them.
func RequireServices() bool { return os.Getenv(EnvRequireServices) == "1" }

func unavailable(t testing.TB, env, what string) {
	t.Helper()
	if RequireServices() {
		t.Fatalf("%s is not set but %s=1: start %s (make test does) or unset %s", env, EnvRequireServices, what, EnvRequireServices)
	}
	t.Skipf("%s not set; skipping test that needs %s (run `make test`, or see deploy/local/)", env, what)
}

// Kafka returns the brokers of a real Apache Kafka cluster from KAFKA_BROKERS.
// Combine with TopicPrefix or Topic: the broker is shared by all tests.
func Kafka(t testing.TB) []string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(EnvKafkaBrokers))
	if v == "" {
		unavailable(t, EnvKafkaBrokers, "Apache Kafka (deploy/local/kafka.sh start)")
	}
	var brokers []string
	for _, b := range strings.Split(v, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	return brokers
}

// ClickHouseAddr returns the native-protocol address from CLICKHOUSE_ADDR.
func ClickHouseAddr(t testing.TB) string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(EnvClickHouseAddr))
	if v == "" {
		unavailable(t, EnvClickHouseAddr, "ClickHouse (deploy/local/clickhouse.sh start)")
	}
	return v
}

// ClickHouseHTTPAddr returns the HTTP address from CLICKHOUSE_HTTP_ADDR, or
// the native address's host with port 8123 when only CLICKHOUSE_ADDR is set.
func ClickHouseHTTPAddr(t testing.TB) string {
	t.Helper()
	if v := strings.TrimSpace(os.Getenv(EnvClickHouseHTTPAddr)); v != "" {
		return v
	}
	addr := ClickHouseAddr(t)
	host := addr
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host = addr[:i]
	}
	return host + ":8123"
}

// ClickHouseOptions returns connection options for CLICKHOUSE_ADDR with
// database as the default database (the user is `default`, no password).
func ClickHouseOptions(t testing.TB, database string) *clickhouse.Options {
	t.Helper()
	settings := clickhouse.Settings{}
	for k, v := range ClickHouseSettings {
		settings[k] = v
	}
	return &clickhouse.Options{
		Addr:        []string{ClickHouseAddr(t)},
		Auth:        clickhouse.Auth{Database: database, Username: "default"},
		Settings:    settings,
		DialTimeout: 5 * time.Second,
		// As tokenmeter's own connections (internal/chx).
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	}
}

// ClickHouse connects to CLICKHOUSE_ADDR, creates a fresh database for this
// test and returns a connection whose default database it is, plus its name.
// The database is dropped and the connection closed when the test ends (kept
// if the test failed and TOKENMETER_KEEP_DB=1, for a look afterwards).
func ClickHouse(t testing.TB) (driver.Conn, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	admin, err := clickhouse.Open(ClickHouseOptions(t, "default"))
	if err != nil {
		t.Fatalf("testenv: open ClickHouse at %s: %v", ClickHouseAddr(t), err)
	}
	if err := admin.Ping(ctx); err != nil {
		_ = admin.Close()
		t.Fatalf("testenv: ping ClickHouse at %s: %v", ClickHouseAddr(t), err)
	}
	db := DatabaseName(t)
	if err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		_ = admin.Close()
		t.Fatalf("testenv: create database %s: %v", db, err)
	}

	conn, err := clickhouse.Open(ClickHouseOptions(t, db))
	if err != nil {
		_ = admin.Close()
		t.Fatalf("testenv: open ClickHouse database %s: %v", db, err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		defer admin.Close()
		if t.Failed() && os.Getenv("TOKENMETER_KEEP_DB") == "1" {
			t.Logf("testenv: keeping ClickHouse database %s", db)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("testenv: drop database %s: %v", db, err)
		}
	})
	return conn, db
}

// Python returns the interpreter of the pinned virtualenv for a test-tooling
// area (tests/python/AREA), built by `deploy/local/python.sh ensure AREA`
// under TOKENMETER_VENV_DIR (make test sets it and builds every area first).
func Python(t testing.TB, area string) string {
	t.Helper()
	dir := strings.TrimSpace(os.Getenv(EnvVenvDir))
	if dir == "" {
		unavailable(t, EnvVenvDir, "the Python test tooling (deploy/local/python.sh ensure "+area+")")
	}
	py := filepath.Join(dir, "venv-"+area, "bin", "python")
	if _, err := os.Stat(py); err != nil {
		if RequireServices() {
			t.Fatalf("testenv: %s missing: run deploy/local/python.sh ensure %s", py, area)
		}
		t.Skipf("testenv: %s missing; run deploy/local/python.sh ensure %s", py, area)
	}
	return py
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// DatabaseName returns a new name of the form t_<test name>_<random>, safe as
// an unquoted ClickHouse identifier.
func DatabaseName(t testing.TB) string {
	t.Helper()
	return "t_" + sanitise(t.Name(), 40, "_") + "_" + randomSuffix(t)
}

// TopicPrefix returns a prefix unique to this test and call, ending in ".",
// e.g. "test.kafkasink_roundtrip.3fa2c1d9.": put it before the usual topic
// names so tests on the shared broker never see each other's records.
func TopicPrefix(t testing.TB) string {
	t.Helper()
	return "test." + sanitise(t.Name(), 60, "_") + "." + randomSuffix(t) + "."
}

// Topic returns TopicPrefix(t)+name.
func Topic(t testing.TB, name string) string {
	t.Helper()
	return TopicPrefix(t) + name
}

func sanitise(name string, maxLen int, sep string) string {
	s := unsafeChars.ReplaceAllString(strings.ToLower(name), sep)
	s = strings.Trim(s, sep)
	if len(s) > maxLen {
		s = s[:maxLen]
	}
	if s == "" {
		s = "x"
	}
	return s
}

func randomSuffix(t testing.TB) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testenv: random: %v", err)
	}
	return hex.EncodeToString(b[:])
}
