package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tokenmeter/tokenmeter/internal/chx"
)

// MigratedClickHouse is ClickHouse(t) with every tokenmeter migration and
// view applied to the fresh database, as `tokenmeter migrate` does.
func MigratedClickHouse(t testing.TB) (driver.Conn, string) {
	t.Helper()
	conn, db := ClickHouse(t)
	cfg := chx.Config{Addr: ClickHouseAddr(t), Database: db}
	cfg.ApplyDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := chx.Migrate(ctx, conn, cfg); err != nil {
		t.Fatalf("testenv: migrate %s: %v", db, err)
	}
	return conn, db
}
