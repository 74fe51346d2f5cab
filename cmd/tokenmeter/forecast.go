package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/app"
	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/forecast"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

func init() {
	register("forecast", "bottom-up forecast from a plan file: validate|build|sensitivity|calibrate|approve|show (docs/forecast.md)", forecastCmd)
}

func forecastCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: tokenmeter forecast validate|build|sensitivity|calibrate|approve|show [flags] CONFIG")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "validate":
		if len(args) != 1 {
			return errors.New("usage: tokenmeter forecast validate PLAN")
		}
		p, err := forecast.Read(args[0])
		if err != nil {
			return fmt.Errorf("%s is invalid:\n%w", args[0], err)
		}
		fmt.Printf("%s is valid: tenant %s, %d, %d workflow(s), scenario %s\n", args[0], p.Tenant, p.Year, len(p.Workflows), p.Scenario)
		return nil
	case "build", "sensitivity", "calibrate", "approve", "show":
	default:
		return fmt.Errorf("unknown forecast command %q", sub)
	}
	fs := flag.NewFlagSet("forecast "+sub, flag.ContinueOnError)
	planPath := fs.String("plan", "", "plan file (YAML, docs/forecast.md)")
	steps := fs.String("steps", "-30,-20,-10,0,10,20,30", "sensitivity: changes in percent")
	weeks := fs.Int("weeks", 4, "calibrate: weeks of usage to observe, ending now")
	write := fs.Bool("write", false, "calibrate: write the observed drivers into the plan file")
	who := fs.String("by", os.Getenv("USER"), "approve: who approves")
	note := fs.String("note", "", "approve: a note stored with the version")
	tenantID := fs.String("tenant", "", "show: tenant (default: the plan's)")
	year := fs.Int("year", 0, "show: year (default: the plan's, else this year)")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	var plan *forecast.Plan
	if *planPath != "" {
		if plan, err = forecast.Read(*planPath); err != nil {
			return err
		}
	} else if sub != "show" {
		return errors.New("-plan FILE is required")
	}
	eng, err := pricing.Load(cfg.Pricing, cfg.Resolve)
	if err != nil {
		return err
	}
	switch sub {
	case "build":
		r, err := forecast.Build(plan, eng, forecast.Options{})
		if err != nil {
			return err
		}
		fmt.Printf("forecast %s %d (%s), %s:\n\n", plan.Tenant, plan.Year, plan.Scenario, plan.ReportingCurrency)
		return forecast.WriteTable(os.Stdout, r)
	case "sensitivity":
		var st []int
		for _, s := range strings.Split(*steps, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("-steps: %q is not a whole percent", s)
			}
			st = append(st, n)
		}
		s, err := forecast.RunSensitivity(plan, eng, forecast.Knobs, st)
		if err != nil {
			return err
		}
		return forecast.WriteSensitivity(os.Stdout, s, plan.ReportingCurrency)
	}
	conn, err := chx.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	db := cfg.ClickHouse.Database
	switch sub {
	case "calibrate":
		to := time.Now()
		from := to.AddDate(0, 0, -7**weeks)
		obs, err := forecast.Observe(ctx, conn, db, plan.Tenant, from, to)
		if err != nil {
			return err
		}
		fmt.Printf("observed %s .. %s (%d weeks) beside the plan:\n\n", from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly), *weeks)
		if err := forecast.WriteComparison(os.Stdout, forecast.Compare(plan, obs)); err != nil {
			return err
		}
		if *write {
			changed, err := forecast.WriteObserved(*planPath, obs)
			if err != nil {
				return err
			}
			fmt.Printf("\nwrote %d observed value(s) into %s\n", len(changed), *planPath)
		}
		return nil
	case "approve":
		r, err := forecast.Build(plan, eng, forecast.Options{})
		if err != nil {
			return err
		}
		v, err := forecast.Approve(ctx, conn, db, r, *who, *note, time.Now())
		if err != nil {
			return err
		}
		fmt.Printf("approved forecast version %s: %s %d %s, %s %s, by %s\n", v.ID, v.Tenant, v.Year, v.Scenario, v.Currency, v.Total.StringFixed(2), v.ApprovedBy)
		return nil
	case "show":
		t, y := *tenantID, *year
		if plan != nil {
			if t == "" {
				t = plan.Tenant
			}
			if y == 0 {
				y = plan.Year
			}
		}
		if t == "" {
			t = firstTenant(cfg)
		}
		if y == 0 {
			y = time.Now().Year()
		}
		vs, err := forecast.Versions(ctx, conn, db, t, y)
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			fmt.Printf("no forecast version approved for %s %d\n", t, y)
			return nil
		}
		if err := forecast.WriteVersions(os.Stdout, vs); err != nil {
			return err
		}
		cur, err := forecast.Current(ctx, conn, db, t, y)
		if err != nil || cur == nil {
			return err
		}
		r, err := forecast.Build(cur.Plan, eng, forecast.Options{})
		if err != nil {
			return err
		}
		fmt.Printf("\nversion in force, %s:\n\n", cur.Currency)
		return forecast.WriteTable(os.Stdout, r)
	}
	return nil
}

func firstTenant(cfg *app.Config) string {
	if len(cfg.Tenants) > 0 {
		return cfg.Tenants[0].ID
	}
	return ""
}
