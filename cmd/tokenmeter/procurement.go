package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/app"
	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/configerr"
	"github.com/tokenmeter/tokenmeter/internal/export"
	"github.com/tokenmeter/tokenmeter/internal/forecast"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/procurement"
	"github.com/tokenmeter/tokenmeter/internal/procurement/bill"
	"github.com/tokenmeter/tokenmeter/internal/procurement/chargeback"
	"github.com/tokenmeter/tokenmeter/internal/procurement/chstore"
	"github.com/tokenmeter/tokenmeter/internal/procurement/commit"
	"github.com/tokenmeter/tokenmeter/internal/procurement/offers"
)

func init() {
	register("contracts", "contracts simulate OFFERS.yaml: compare vendor offers on metered usage and scenarios", contractsCmd)
	register("bill", "bill reconcile: reconcile providers' cost reports with metered usage", billCmd)
	register("commitments", "commitments status|focus: commitments and prepaid credits", commitmentsCmd)
	register("chargeback", "chargeback statement: allocate spend to cost centres", chargebackCmd)
}

// configProblems prints every leaf of a validation error on its own line.
func configProblems(err error) error {
	leaves := configerr.Leaves(err)
	if len(leaves) <= 1 {
		return err
	}
	for _, e := range leaves {
		fmt.Fprintln(os.Stderr, "  "+e.Error())
	}
	return fmt.Errorf("%d problems", len(leaves))
}

func subcommand(args []string, name string, subs map[string]func([]string) error) error {
	if len(args) == 0 || subs[args[0]] == nil {
		keys := ""
		for k := range subs {
			keys += " " + k
		}
		return fmt.Errorf("usage: tokenmeter %s {%s } ...", name, keys)
	}
	return subs[args[0]](args[1:])
}

func openOut(path string) (io.Writer, func() error, error) {
	if path == "" || path == "-" {
		return os.Stdout, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

func readFile[T any](path string, read func(io.Reader, string) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, err
	}
	defer f.Close()
	return read(f, path)
}

// store opens the ClickHouse database of a pipeline config.
func store(ctx context.Context, cfgPath string) (chstore.Store, func(), error) {
	cfg, err := app.Load(cfgPath)
	if err != nil {
		return chstore.Store{}, nil, err
	}
	conn, err := chx.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return chstore.Store{}, nil, err
	}
	return chstore.Store{Conn: conn, DB: cfg.ClickHouse.Database}, func() { _ = conn.Close() }, nil
}

func contractsCmd(_ context.Context, args []string) error {
	return subcommand(args, "contracts", map[string]func([]string) error{"simulate": contractsSimulate})
}

func contractsSimulate(args []string) error {
	fs := flag.NewFlagSet("contracts simulate", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "pipeline config whose catalogues, contracts and FX price the usage (required)")
	usagePath := fs.String("usage", "", "monthly usage CSV (header: "+fmt.Sprint(procurement.UsageColumns())+"); default: the config's ClickHouse (v_procurement_usage_monthly)")
	csvPath := fs.String("csv", "", "also write the sheet as CSV to this file")
	window := fs.String("window", "", "override the file's window, FROM:TO (YYYY-MM:YYYY-MM)")
	term := fs.String("term", "", "override the file's term, FROM:TO")
	planPath := fs.String("plan", "", "forecast plan (internal/forecast) whose adoption scenarios replace scaled actuals")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *cfgPath == "" {
		return errors.New("usage: tokenmeter contracts simulate -config PIPELINE [-usage USAGE.csv] [-csv OUT.csv] OFFERS.yaml")
	}
	f, err := offers.Read(pos[0])
	if err != nil {
		return configProblems(err)
	}
	if err := f.Override(*window, *term); err != nil {
		return configProblems(err)
	}
	pc, err := pricingFromConfig(*cfgPath)
	if err != nil {
		return err
	}
	prices, err := offers.LoadPrices(pc)
	if err != nil {
		return err
	}
	sim, err := offers.New(f, prices)
	if err != nil {
		return err
	}
	var usage []procurement.Usage
	if *usagePath != "" {
		usage, err = readFile(*usagePath, func(r io.Reader, _ string) ([]procurement.Usage, error) { return procurement.ReadUsageCSV(r) })
	} else {
		ctx := context.Background()
		st, done, oerr := store(ctx, *cfgPath)
		if oerr != nil {
			return oerr
		}
		defer done()
		usage, err = st.Usage(ctx, f.Tenant, f.Provider, f.Window.List())
	}
	if err != nil {
		return configProblems(err)
	}
	var src procurement.ScenarioSource
	if *planPath != "" {
		plan, err := forecast.Read(*planPath)
		if err != nil {
			return configProblems(err)
		}
		eng, err := pricing.Load(pc, nil)
		if err != nil {
			return err
		}
		src = offers.ForecastScenarios{Plan: plan, Engine: eng, Scales: offers.AdoptionScales(f.Scenarios)}
	}
	sheet, err := sim.Compare(context.Background(), usage, src)
	if err != nil {
		return err
	}
	if err := sheet.WriteTable(os.Stdout); err != nil {
		return err
	}
	if *csvPath != "" {
		w, done, err := openOut(*csvPath)
		if err != nil {
			return err
		}
		if err := sheet.WriteCSV(w); err != nil {
			return err
		}
		return done()
	}
	return nil
}

func billCmd(_ context.Context, args []string) error {
	return subcommand(args, "bill", map[string]func([]string) error{"reconcile": billReconcile, "correct": billCorrect})
}

func billReconcile(args []string) error {
	fs := flag.NewFlagSet("bill reconcile", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "pipeline config whose pricing names models and prices bill quantities (required)")
	billsPath := fs.String("bills", "", "bill sources YAML (required)")
	meteredPath := fs.String("metered", "", "metered usage CSV; default: the config's ClickHouse (v_bill_metered_hourly, v_bill_evidence_hourly)")
	write := fs.Bool("write", false, "store the results in ClickHouse (bill_reconciliation)")
	evidencePath := fs.String("evidence", "", "DLQ / usage-incomplete evidence CSV")
	tenant := fs.String("tenant", "", "tenant whose contract prices the bill's quantities")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" || *billsPath == "" {
		return errors.New("usage: tokenmeter bill reconcile -config PIPELINE -bills BILLS.yaml [-metered METERED.csv [-evidence EVIDENCE.csv]] [-write]")
	}
	bc, err := bill.Read(*billsPath)
	if err != nil {
		return configProblems(err)
	}
	pc, err := pricingFromConfig(*cfgPath)
	if err != nil {
		return err
	}
	eng, err := pricing.Load(pc, nil)
	if err != nil {
		return err
	}
	lines, err := bill.Load(bc)
	if err != nil {
		return configProblems(err)
	}
	ctx := context.Background()
	var st chstore.Store
	if *meteredPath == "" || *write {
		var done func()
		if st, done, err = store(ctx, *cfgPath); err != nil {
			return err
		}
		defer done()
	}
	var metered []bill.Metered
	var ev bill.Evidence
	if *meteredPath != "" {
		if metered, err = readFile(*meteredPath, bill.ReadMeteredCSV); err != nil {
			return configProblems(err)
		}
		if *evidencePath != "" {
			if ev, err = readFile(*evidencePath, bill.ReadEvidenceCSV); err != nil {
				return configProblems(err)
			}
		}
	} else {
		// The bill's days, widened by a day each side for other zones' boundaries.
		from, to := bill.Span(lines)
		if metered, err = st.Metered(ctx, from.AddDate(0, 0, -1), to.AddDate(0, 0, 1)); err != nil {
			return err
		}
		if ev, err = st.Evidence(ctx, from.AddDate(0, 0, -1), to.AddDate(0, 0, 1)); err != nil {
			return err
		}
	}
	rec, err := bill.New(bc, eng, *tenant)
	if err != nil {
		return err
	}
	results, alerts, err := rec.Reconcile(lines, metered, ev)
	if err != nil {
		return err
	}
	if err := bill.WriteTable(os.Stdout, results); err != nil {
		return err
	}
	if *write {
		if err := st.WriteReconciliation(ctx, results, time.Now().UTC()); err != nil {
			return err
		}
	}
	for _, a := range alerts {
		fmt.Printf("ALERT %s %s: residual %s %s is more than %s%% of billed %s\n", a.Day, a.Provider,
			procurement.Cents(a.Residual), a.Currency, a.ThresholdPercent, procurement.Cents(a.Billed))
	}
	if len(alerts) > 0 {
		return exitStatus(3)
	}
	return nil
}

// billCorrect re-prices a closed period with the config's current pricing
// and writes the differences as correction rows; the originals stay.
func billCorrect(args []string) error {
	fs := flag.NewFlagSet("bill correct", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "pipeline config (its pricing is the corrected one) (required)")
	tenant := fs.String("tenant", "", "tenant (required)")
	fromS := fs.String("from", "", "first day of the closed period, YYYY-MM-DD (required)")
	toS := fs.String("to", "", "day after its last, YYYY-MM-DD (required)")
	dry := fs.Bool("dry-run", false, "print the corrections without writing them")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	from, err1 := time.Parse(time.DateOnly, *fromS)
	to, err2 := time.Parse(time.DateOnly, *toS)
	if *cfgPath == "" || *tenant == "" || err1 != nil || err2 != nil {
		return errors.New("usage: tokenmeter bill correct -config PIPELINE -tenant T -from YYYY-MM-DD -to YYYY-MM-DD [-dry-run]")
	}
	pc, err := pricingFromConfig(*cfgPath)
	if err != nil {
		return err
	}
	eng, err := pricing.Load(pc, nil)
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, done, err := store(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer done()
	origs, err := st.Originals(ctx, *tenant, from, to)
	if err != nil {
		return err
	}
	cs, err := chstore.Reprice(eng, origs)
	if err != nil {
		return err
	}
	for _, c := range cs {
		fmt.Printf("%s %s/%s %s: effective %s (list %s) %s\n", c.Day, c.Provider, c.Model, c.PricingTier, c.EffectiveCost, c.ListCost, c.ChargeClass)
	}
	fmt.Printf("%d correction rows\n", len(cs))
	if *dry || len(cs) == 0 {
		return nil
	}
	return st.WriteCorrections(ctx, cs, eng.PricingCurrency(), time.Now().UTC())
}

func commitmentsCmd(_ context.Context, args []string) error {
	return subcommand(args, "commitments", map[string]func([]string) error{"focus": commitmentsFOCUS, "status": commitmentsStatus})
}

func commitmentsFOCUS(args []string) error {
	fs := flag.NewFlagSet("commitments focus", flag.ContinueOnError)
	format := fs.String("format", "csv", "csv, parquet or arrow")
	out := fs.String("o", "-", "output file")
	writeCfg := fs.String("write", "", "also store the rows in this pipeline config's ClickHouse (contract_commitments)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: tokenmeter commitments focus [-format csv|parquet|arrow] [-o FILE] [-write PIPELINE] COMMITMENTS.yaml")
	}
	f, err := commit.Read(pos[0])
	if err != nil {
		return configProblems(err)
	}
	if *writeCfg != "" {
		ctx := context.Background()
		st, done, err := store(ctx, *writeCfg)
		if err != nil {
			return err
		}
		defer done()
		if err := st.WriteCommitments(ctx, f, time.Now().UTC()); err != nil {
			return err
		}
	}
	w, done, err := openOut(*out)
	if err != nil {
		return err
	}
	if _, err := export.WriteTable(f.FOCUSTable(), *format, w); err != nil {
		return err
	}
	return done()
}

func commitmentsStatus(args []string) error {
	fs := flag.NewFlagSet("commitments status", flag.ContinueOnError)
	spendPath := fs.String("spend", "", "daily spend CSV (day,tenant,provider,model,tier,pricing_currency,cost) to draw down")
	cfgPath := fs.String("config", "", "draw down from this pipeline config's ClickHouse (v_commitment_spend_daily) instead of -spend")
	atS := fs.String("at", "", "instant of the status (default now)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (*spendPath == "") == (*cfgPath == "") {
		return errors.New("usage: tokenmeter commitments status {-spend SPEND.csv | -config PIPELINE} [-at T] COMMITMENTS.yaml")
	}
	f, err := commit.Read(pos[0])
	if err != nil {
		return configProblems(err)
	}
	at, err := parseAt(*atS)
	if err != nil {
		return err
	}
	l, err := commit.New(f)
	if err != nil {
		return err
	}
	if *spendPath != "" {
		if err := readInto(*spendPath, l); err != nil {
			return configProblems(err)
		}
	} else {
		ctx := context.Background()
		st, done, err := store(ctx, *cfgPath)
		if err != nil {
			return err
		}
		defer done()
		if err := st.DrawDown(ctx, l, at); err != nil {
			return err
		}
	}
	if err := commit.WriteStatus(os.Stdout, l.Status(at)); err != nil {
		return err
	}
	alerts := l.Alerts(at)
	for _, a := range alerts {
		fmt.Printf("ALERT %s %s: %s\n", a.Kind, a.CommitmentID, a.Message)
	}
	if len(alerts) > 0 {
		return exitStatus(3)
	}
	return nil
}

func readInto(path string, l *commit.Ledger) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return commit.ReadSpendCSV(f, path, l)
}

func chargebackCmd(_ context.Context, args []string) error {
	return subcommand(args, "chargeback", map[string]func([]string) error{"statement": chargebackStatement})
}

func chargebackStatement(args []string) error {
	fs := flag.NewFlagSet("chargeback statement", flag.ContinueOnError)
	spendPath := fs.String("spend", "", "monthly spend CSV")
	cfgPath := fs.String("config", "", "read spend and call drivers from this pipeline config's ClickHouse instead of -spend/-drivers")
	tenantName := fs.String("tenant", "", "tenant (with -config)")
	month := fs.String("month", "", "month YYYY-MM (with -config)")
	driversPath := fs.String("drivers", "", "shared-workflow drivers CSV")
	cachePath := fs.String("cache", "", "cache use CSV")
	format := fs.String("format", "csv", "csv, parquet or arrow")
	out := fs.String("o", "-", "statement file")
	allocOut := fs.String("allocations", "", "also write every allocated charge (FOCUS AllocatedMethodId/Details) as CSV here")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (*spendPath == "") == (*cfgPath == "") || (*cfgPath != "" && (*tenantName == "" || *month == "")) {
		return errors.New("usage: tokenmeter chargeback statement {-spend SPEND.csv [-drivers D.csv] | -config PIPELINE -tenant T -month YYYY-MM} [-cache C.csv] [-format F] [-o OUT] [-allocations A.csv] RULES.yaml")
	}
	rules, err := chargeback.Read(pos[0])
	if err != nil {
		return configProblems(err)
	}
	var spend []chargeback.Spend
	var drivers []chargeback.Driver
	if *cfgPath != "" {
		ctx := context.Background()
		st, done, err := store(ctx, *cfgPath)
		if err != nil {
			return err
		}
		defer done()
		if spend, drivers, err = st.ChargebackInputs(ctx, *tenantName, *month, rules.Currency); err != nil {
			return err
		}
	} else if spend, err = readFile(*spendPath, chargeback.ReadSpendCSV); err != nil {
		return configProblems(err)
	}
	if *driversPath != "" {
		if drivers, err = readFile(*driversPath, chargeback.ReadDriversCSV); err != nil {
			return configProblems(err)
		}
	}
	var cache []chargeback.CacheUse
	if *cachePath != "" {
		if cache, err = readFile(*cachePath, chargeback.ReadCacheCSV); err != nil {
			return configProblems(err)
		}
	}
	allocs, err := chargeback.Allocate(rules, spend, drivers, cache)
	if err != nil {
		return err
	}
	w, done, err := openOut(*out)
	if err != nil {
		return err
	}
	if err := chargeback.Build(rules, allocs).Write(*format, w); err != nil {
		return err
	}
	if err := done(); err != nil {
		return err
	}
	if *allocOut != "" {
		w, done, err := openOut(*allocOut)
		if err != nil {
			return err
		}
		if _, err := export.WriteTable(chargeback.AllocationsTable(allocs), export.FormatCSV, w); err != nil {
			return err
		}
		return done()
	}
	return nil
}
