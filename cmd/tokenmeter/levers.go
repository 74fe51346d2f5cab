package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/calendar"
	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/levers"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

func init() {
	register("levers", "the four cost levers measured: whatif | long-context | decompose | anomalies | top (docs/levers.md)", leversCmd)
}

const leversUsage = `usage: tokenmeter levers ANALYSIS [flags] CONFIG

analyses:
  whatif       re-price a period's real calls on candidate models (--candidates p/m,p/m --cache same|none)
  long-context what the calls billed at a long-context tier would cost below the threshold
  decompose    the quarter's change in cost per outcome of a workflow, by lever (--workflow, --period 2026-Q4)
  anomalies    changes in the drivers of spend per workflow and day (median/MAD)
  top          the largest savings across levers (--n 3)

common flags: --tenant ID --period P (2026-Q4, 2026-11, 2026, FROM..TO; default: this month)
              --filter column=value (workflow=, prompt_template=, team=, model=, …)`

func leversCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(os.Stderr, leversUsage)
		return errors.New("levers: an ANALYSIS is required")
	}
	analysis := args[0]
	fs := flag.NewFlagSet("levers "+analysis, flag.ContinueOnError)
	tenantID := fs.String("tenant", "", "tenant id (default: the config's only tenant)")
	periodS := fs.String("period", "", "period in the tenant's time zone (default: the current month)")
	filterS := fs.String("filter", "", "column=value: only calls with this attribution")
	workflow := fs.String("workflow", "", "shorthand for --filter workflow=NAME")
	candS := fs.String("candidates", "", "whatif/top: provider/model,… to re-price on")
	cacheS := fs.String("cache", string(levers.CacheSame), "whatif: cache assumption on the candidate (same | none)")
	n := fs.Int("n", 3, "top: how many savings to show")
	cfg, err := loadConfig(fs, args[1:])
	if err != nil {
		return err
	}
	reg, err := tenant.NewRegistry(cfg.Tenants)
	if err != nil {
		return err
	}
	t, err := pickTenant(reg, *tenantID)
	if err != nil {
		return err
	}
	var period calendar.Period
	if *periodS == "" {
		now := time.Now().In(t.Location)
		period, _ = calendar.Parse(now.Format("2006-01"), t.Location)
	} else if period, err = calendar.Parse(*periodS, t.Location); err != nil {
		return err
	}
	f := levers.Filter{Tenant: t.ID, From: period.From, To: period.To}
	if *workflow != "" {
		f.Column, f.Value = "workflow", *workflow
	}
	if *filterS != "" {
		c, v, ok := strings.Cut(*filterS, "=")
		if !ok {
			return fmt.Errorf("--filter %q: want column=value", *filterS)
		}
		f.Column, f.Value = c, v
	}
	if err := f.Validate(); err != nil {
		return err
	}
	cands, err := levers.ParseCandidates(*candS)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	conn, err := chx.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	src := levers.Source{Conn: conn, DB: cfg.ClickHouse.Database}
	engine := func() (*pricing.Engine, error) { return pricing.Load(cfg.Pricing, cfg.Resolve) }
	out := os.Stdout
	fmt.Fprintf(out, "tenant %s, %s (%s to %s, %s)\n", t.ID, period.Name, period.From.Format(time.DateOnly), period.To.Format(time.DateOnly), t.Location)
	switch analysis {
	case "whatif":
		if len(cands) == 0 {
			return errors.New("levers whatif: --candidates is required")
		}
		e, err := engine()
		if err != nil {
			return err
		}
		ws, err := src.WhatIfs(ctx, e, f, cands, levers.CacheAssumption(*cacheS))
		if err != nil {
			return err
		}
		outc, err := src.Outcomes(ctx, f)
		if err != nil {
			return err
		}
		return levers.WriteWhatIfs(out, ws, outc)
	case "long-context":
		e, err := engine()
		if err != nil {
			return err
		}
		lc, err := src.LongContext(ctx, e, f)
		if err != nil {
			return err
		}
		if len(lc) == 0 {
			fmt.Fprintln(out, "no calls billed at a long-context tier")
		}
		for _, l := range lc {
			fmt.Fprintf(out, "%s/%s: %d long-context calls cost %s %s; below the threshold they would cost %s (saving %s)\n",
				l.Provider, l.Model, l.Calls, l.Actual.StringFixed(2), l.Currency, l.Below.StringFixed(2), l.Actual.Sub(l.Below).StringFixed(2))
		}
		return nil
	case "decompose":
		if f.Column != "workflow" {
			return errors.New("levers decompose: --workflow is required")
		}
		prev := period.Previous()
		d, cur, err := src.DecomposeQuarters(ctx, t.ID, f.Value, prev.From, period.From)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "workflow %s: %s against %s\n", f.Value, period.Name, prev.Name)
		return levers.WriteDecomposition(out, d, cur)
	case "anomalies":
		as, err := src.Anomalies(ctx, t.ID, period.From, period.To, levers.DetectConfig{})
		if err != nil {
			return err
		}
		return levers.WriteAnomalies(out, as)
	case "top":
		e, err := engine()
		if err != nil {
			return err
		}
		ss, err := src.TopSavings(ctx, e, f, cands)
		if err != nil {
			return err
		}
		return levers.WriteSavings(out, ss, *n)
	}
	fmt.Fprintln(os.Stderr, leversUsage)
	return fmt.Errorf("levers: unknown analysis %q", analysis)
}

// pickTenant returns the named tenant, or the only one.
func pickTenant(reg *tenant.Registry, id string) (*tenant.Tenant, error) {
	if id == "" {
		if all := reg.All(); len(all) != 1 {
			return nil, fmt.Errorf("--tenant is required (the config has %d tenants)", len(all))
		}
		return reg.All()[0], nil
	}
	t, ok := reg.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("tenant %q is not in the config", id)
	}
	return t, nil
}
