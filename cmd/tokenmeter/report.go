package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/levers"
	"os"
	"path/filepath"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/export"
	"github.com/tokenmeter/tokenmeter/internal/forecast"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/report"
)

func init() {
	register("report", "board-pack: the CFO board pack as one HTML file, a PDF and CSV/Parquet tables", reportCmd)
}

func reportCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "board-pack" {
		return errors.New("usage: tokenmeter report board-pack -tenant ID -period YYYY-Qn|YYYY-MM [-plan FILE] [-out DIR] CONFIG")
	}
	fs := flag.NewFlagSet("report board-pack", flag.ContinueOnError)
	tenantID := fs.String("tenant", "", "tenant (default: the config's first)")
	periodS := fs.String("period", "", "quarter (2026-Q4) or month (2026-11) in the tenant's time zone (default: this quarter)")
	planPath := fs.String("plan", "", "plan file to reconcile (default: the approved version's plan)")
	out := fs.String("out", ".local/reports", "directory for the pack")
	data := fs.Bool("data", true, "also write the pack's tables as CSV and Parquet (tokenmeter export) under OUT/data-...")
	candS := fs.String("candidates", "", "provider/model,… the levers page re-prices routing on (empty: no routing what-if)")
	cfg, err := loadConfig(fs, args[1:])
	if err != nil {
		return err
	}
	t := *tenantID
	if t == "" {
		t = firstTenant(cfg)
	}
	var cur, tz string
	found := false
	for _, tc := range cfg.Tenants {
		if tc.ID == t {
			cur, tz, found = tc.ReportingCurrency, tc.TimeZone, true
		}
	}
	if !found {
		return fmt.Errorf("tenant %q is not in the config's tenants:", t)
	}
	if cur == "" {
		cur = "USD"
	}
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return err
	}
	now := time.Now()
	if *periodS == "" {
		n := now.In(loc)
		*periodS = fmt.Sprintf("%04d-Q%d", n.Year(), (int(n.Month())-1)/3+1)
	}
	per, err := report.ParsePeriod(*periodS)
	if err != nil {
		return err
	}
	eng, err := pricing.Load(cfg.Pricing, cfg.Resolve)
	if err != nil {
		return err
	}
	var plan *forecast.Plan
	if *planPath != "" {
		if plan, err = forecast.Read(*planPath); err != nil {
			return err
		}
	}
	conn, err := chx.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	db := cfg.ClickHouse.Database
	cands, err := levers.ParseCandidates(*candS)
	if err != nil {
		return err
	}
	d, err := report.Load(ctx, report.Source{Conn: conn, DB: db}, report.LoadOptions{Tenant: t, Currency: cur, TimeZone: tz, Period: per, Now: now, Plan: plan, Engine: eng,
		Levers: &report.LeversOptions{Engine: eng, Candidates: cands}})
	if err != nil {
		return err
	}
	pack := report.Build(d, nil)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	base := filepath.Join(*out, fmt.Sprintf("board-pack-%s-%s", t, per.Label))
	for _, w := range []struct {
		ext   string
		write func(*os.File) error
	}{
		{".html", func(f *os.File) error { return report.WriteHTML(f, pack) }},
		{".pdf", func(f *os.File) error { return report.WritePDF(f, pack) }},
	} {
		f, err := os.Create(base + w.ext)
		if err != nil {
			return err
		}
		if err := w.write(f); err != nil {
			f.Close()
			return fmt.Errorf("%s%s: %w", base, w.ext, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if *data {
		dir := base + "-data"
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, ds := range report.Datasets(db, t, per) {
			for _, format := range []string{export.FormatCSV, export.FormatParquet} {
				f, err := os.Create(filepath.Join(dir, ds.Name+"."+format))
				if err != nil {
					return err
				}
				if _, err := export.Write(ctx, conn, ds.Query, format, f); err != nil {
					f.Close()
					return fmt.Errorf("%s.%s: %w", ds.Name, format, err)
				}
				// The Parquet writer closes the file itself.
				if err := f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
					return err
				}
			}
		}
		fmt.Printf("tables (CSV, Parquet): %s/\n", dir)
	}
	fmt.Printf("board pack: %s.html\nPDF:        %s.pdf\n", base, base)
	return nil
}
