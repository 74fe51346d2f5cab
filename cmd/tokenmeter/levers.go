package main

import (
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/app"
	"github.com/tokenmeter/tokenmeter/internal/budget"
	"github.com/tokenmeter/tokenmeter/internal/event"
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
  decompose    before/after a change: cost per call and per outcome, tokens and outcomes per call, and the
               change in cost per outcome by lever (--workflow, --period 2026-Q4 [--before PERIOD])
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
	beforeS := fs.String("before", "", "decompose: the period to compare with (default: the one just before --period), e.g. a routing change's before and after: --before 2026-10-01..2026-11-15 --period 2026-11-15..2027-01-01")
	publish := fs.Bool("publish", false, "anomalies: publish new anomalies to the alerts topic and the tenant's budget webhooks, once each")
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
		if *beforeS != "" {
			if prev, err = calendar.Parse(*beforeS, t.Location); err != nil {
				return err
			}
		}
		d, both, cur, err := src.DecomposePeriods(ctx, t.ID, f.Value, [2]time.Time{prev.From, prev.To}, [2]time.Time{period.From, period.To})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "workflow %s: %s against %s\n", f.Value, period.Name, prev.Name)
		return levers.WriteDecomposition(out, d, both, cur)
	case "anomalies":
		as, err := src.Anomalies(ctx, t.ID, period.From, period.To, levers.DetectConfig{})
		if err != nil {
			return err
		}
		if err := levers.WriteAnomalies(out, as); err != nil || !*publish {
			return err
		}
		return publishAnomalies(ctx, cfg, src, t.ID, as)
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

// publishAnomalies sends the anomalies not yet in ClickHouse's alerts table
// to the alerts topic (the sink stores them) and to the webhooks of the
// tenant's budgets, like a budget alert.
func publishAnomalies(ctx context.Context, cfg *app.Config, src levers.Source, tenantID string, as []levers.DriverAnomaly) error {
	fresh, err := src.Unpublished(ctx, tenantID, as)
	if err != nil {
		return err
	}
	if len(fresh) == 0 {
		fmt.Println("no new anomalies to publish")
		return nil
	}
	kc := cfg.Kafka
	if len(kc.Brokers) == 0 && kc.Embedded.Listen != "" {
		kc.Brokers = []string{kc.Embedded.Listen} // the running process's embedded broker
	}
	cl, err := kgo.NewClient(kc.ClientOpts()...)
	if err != nil {
		return err
	}
	defer cl.Close()
	now := time.Now()
	alerts := make([]event.Alert, len(fresh))
	for i, a := range fresh {
		alerts[i] = a.Alert(now)
	}
	if err := levers.Produce(ctx, cl, kc.Topics.Alerts, alerts); err != nil {
		return fmt.Errorf("levers: publish to %s: %w", kc.Topics.Alerts, err)
	}
	var hooks []budget.WebhookConfig
	seen := map[string]bool{}
	for _, b := range cfg.Budget.Budgets {
		for _, h := range b.Webhooks {
			if b.Tenant == tenantID && !seen[h.URL] {
				seen[h.URL] = true
				hooks = append(hooks, h)
			}
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var errs []error
	for _, a := range alerts {
		if err := budget.Deliver(ctx, cfg.Budget, a, "", hooks, log); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.AlertID, err))
		}
	}
	fmt.Printf("published %d anomalies to %s and %d webhooks\n", len(alerts), kc.Topics.Alerts, len(hooks))
	return errors.Join(errs...)
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
