package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/forecast"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/reconcile"
)

func init() {
	register("reconcile", "bottom-up plan vs the CFO's envelope: gap per month and year, ranked options per lever, variance bridge", reconcileCmd)
}

func reconcileCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	planPath := fs.String("plan", "", "plan file with an envelope: section (docs/forecast.md)")
	offline := fs.Bool("offline", false, "do not read actuals from ClickHouse: the whole year is the model")
	fromS := fs.String("from", "", "first month options may change (YYYY-MM; default: the first month not yet ended)")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if *planPath == "" {
		return errors.New("-plan FILE is required")
	}
	plan, err := forecast.Read(*planPath)
	if err != nil {
		return err
	}
	if plan.Envelope == nil {
		return fmt.Errorf("%s has no envelope: section to reconcile with", *planPath)
	}
	eng, err := pricing.Load(cfg.Pricing, cfg.Resolve)
	if err != nil {
		return err
	}
	from := reconcile.FirstOpen(plan.Year, plan.Location(), time.Now())
	if *fromS != "" {
		y, m, err := forecast.ParseMonth(*fromS)
		if err != nil || y != plan.Year {
			return fmt.Errorf("-from %q must be a month of %d", *fromS, plan.Year)
		}
		from = m
	}
	rc := reconcile.Config{From: from}
	var acts []reconcile.Actual
	var conn driver.Conn
	db := cfg.ClickHouse.Database
	if !*offline {
		if conn, err = chx.Open(ctx, cfg.ClickHouse); err != nil {
			return fmt.Errorf("%w (use -offline to reconcile the model alone)", err)
		}
		defer conn.Close()
		if acts, err = reconcile.Actuals(ctx, conn, db, plan.Tenant, plan.Year); err != nil {
			return err
		}
		rc = reconcile.ClosedConfig(acts, from)
	}
	rep, err := reconcile.Run(plan, eng, rc)
	if err != nil {
		return err
	}
	fmt.Printf("reconciliation %s %d (%s), %s; months before %s at actuals\n\n", plan.Tenant, plan.Year, plan.Scenario, plan.ReportingCurrency, from.Label(plan.Year))
	if err := reconcile.WriteReport(os.Stdout, rep); err != nil {
		return err
	}
	if *offline {
		return nil
	}
	closed := reconcile.ClosedOnly(acts, from)
	if len(closed) == 0 {
		return nil
	}
	ver, err := forecast.Current(ctx, conn, db, plan.Tenant, plan.Year)
	if err != nil || ver == nil {
		if ver == nil && err == nil {
			fmt.Println("\nno approved forecast version: no variance bridge (tokenmeter forecast approve)")
		}
		return err
	}
	base, err := forecast.Build(ver.Plan, eng, forecast.Options{})
	if err != nil {
		return err
	}
	rows, err := reconcile.Bridge(ver.Plan, eng, base, closed)
	if err != nil {
		return err
	}
	fmt.Printf("\nvariance bridge against version %s (closed months; effects add up to the variance):\n\n", ver.ID)
	return reconcile.WriteBridge(os.Stdout, rows, plan.Year)
}
