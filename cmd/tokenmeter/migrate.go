package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/app"
	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

func init() {
	register("migrate", "apply the ClickHouse migrations and sync tenants and budgets from CONFIG (safe to run twice)", migrateCmd)
	register("forecasts", "forecasts import FILE CONFIG: load monthly forecasts per workflow (CSV) into ClickHouse", forecastsCmd)
}

func migrateCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%s is invalid:\n%w", cfg.Path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	conn, err := chx.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := chx.Migrate(ctx, conn, cfg.ClickHouse)
	if res != nil {
		fmt.Printf("clickhouse %s at %s, database %s\n", res.Server, cfg.ClickHouse.Addr, cfg.ClickHouse.Database)
		for _, m := range res.Applied {
			fmt.Printf("  applied  %s\n", m)
		}
		if len(res.Already) > 0 {
			fmt.Printf("  already applied: %s\n", strings.Join(res.Already, ", "))
		}
		if len(res.Views) > 0 {
			fmt.Printf("  views (re)created: %s\n", strings.Join(res.Views, ", "))
		}
		if len(res.Dropped) > 0 {
			fmt.Printf("  views dropped: %s\n", strings.Join(res.Dropped, ", "))
		}
		for _, n := range res.Notes {
			fmt.Printf("  %s\n", n)
		}
	}
	if err != nil {
		return err
	}
	if err := syncReference(ctx, conn, cfg); err != nil {
		return err
	}
	fmt.Printf("  synced %d tenant(s) and %d budget(s) from %s\n", len(cfg.Tenants), len(cfg.Budget.Budgets), cfg.Path)
	if n, err := syncPrices(ctx, conn, cfg); err != nil {
		return err
	} else if n > 0 {
		fmt.Printf("  synced %d catalogue price row(s) (every effective-dated entry) into price_catalogue\n", n)
	}
	if cfg.ClickHouse.Forecasts != "" {
		file := cfg.Resolve(cfg.ClickHouse.Forecasts)
		n, err := importForecastFile(ctx, conn, cfg.ClickHouse.Database, file)
		if err != nil {
			return fmt.Errorf("clickhouse.forecasts: %w", err)
		}
		fmt.Printf("  loaded %d forecast(s) from %s\n", n, file)
	}
	return nil
}

// syncPrices writes every catalogue row (every effective-dated entry and
// tier of every model) into price_catalogue. A config without catalogues
// syncs nothing.
func syncPrices(ctx context.Context, conn driver.Conn, cfg *app.Config) (int, error) {
	if len(cfg.Pricing.Catalogues) == 0 {
		return 0, nil
	}
	eng, err := pricing.Load(cfg.Pricing, cfg.Resolve)
	if err != nil {
		return 0, fmt.Errorf("pricing: %w", err)
	}
	rows := chx.CataloguePrices(eng)
	if err := chx.SyncPriceCatalogue(ctx, conn, cfg.ClickHouse.Database, rows, time.Now()); err != nil {
		return 0, err
	}
	return len(rows), nil
}

func importForecastFile(ctx context.Context, conn driver.Conn, db, file string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	forecasts, err := chx.ParseForecasts(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	if err := chx.ImportForecasts(ctx, conn, db, forecasts, filepath.Base(file), time.Now()); err != nil {
		return 0, err
	}
	return len(forecasts), nil
}

func syncReference(ctx context.Context, conn driver.Conn, cfg *app.Config) error {
	reg, err := tenant.NewRegistry(cfg.Tenants)
	if err != nil {
		return fmt.Errorf("tenants: %w", err)
	}
	now := time.Now()
	if err := chx.SyncTenants(ctx, conn, cfg.ClickHouse.Database, chx.TenantRefs(reg), now); err != nil {
		return err
	}
	var budgets []chx.BudgetRef
	for _, b := range cfg.Budget.Budgets {
		amount, err := decimal.NewFromString(b.Amount)
		if err != nil {
			return fmt.Errorf("budget.budgets %s: amount %q: %w", b.ID, b.Amount, err)
		}
		period, unit, mode := b.Period, b.Unit, b.Mode
		if period == "" {
			period = "month"
		}
		if unit == "" {
			unit = "currency"
		}
		if mode == "" {
			mode = "alert"
		}
		budgets = append(budgets, chx.BudgetRef{
			ID: b.ID, Tenant: b.Tenant, Workflow: b.Scope.Workflow, Team: b.Scope.Team, User: b.Scope.User,
			Period: period, Amount: amount, Unit: unit, Mode: mode, Owner: b.Owner,
		})
	}
	return chx.SyncBudgets(ctx, conn, cfg.ClickHouse.Database, budgets, now)
}

func forecastsCmd(ctx context.Context, args []string) error {
	if len(args) < 1 || args[0] != "import" {
		return fmt.Errorf("usage: tokenmeter forecasts import FILE CONFIG (CSV header: tenant,workflow,month,amount,currency)")
	}
	fs := flag.NewFlagSet("forecasts import", flag.ContinueOnError)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("usage: tokenmeter forecasts import FILE CONFIG")
	}
	file := fs.Arg(0)
	cfg, err := app.Load(fs.Arg(1))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := chx.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	n, err := importForecastFile(ctx, conn, cfg.ClickHouse.Database, file)
	if err != nil {
		return err
	}
	fmt.Printf("imported %d forecast(s) from %s into %s.forecasts\n", n, file, cfg.ClickHouse.Database)
	return nil
}
