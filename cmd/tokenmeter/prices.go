package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenmeter/tokenmeter/internal/app"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

func init() {
	register("prices", "price catalogue tools: check, show, quote, import (LiteLLM), import-fx (see docs/pricing.md)", pricesCmd)
}

var pricesSubcommands = map[string]func(args []string, stdout io.Writer) error{
	"check":     pricesCheck,
	"show":      pricesShow,
	"quote":     pricesQuote,
	"import":    pricesImport,
	"import-fx": pricesImportFX,
}

func pricesUsage() error {
	fmt.Fprint(os.Stderr, `usage: tokenmeter prices SUBCOMMAND [flags] ...

  check     [-at TIME] [-config CONFIG | CATALOGUE...]   lint catalogues; exits non-zero on errors
  show      [-at TIME] [-config CONFIG | -catalogue F,...] [PROVIDER [MODEL]]
  quote     -config CONFIG [-tenant T] [-tier T] [-currency C] [-at TIME] -input N -output N PROVIDER MODEL
  import    -from litellm -valid-from DATE [-source URL] [-provider a,b] [-o OUT.yaml] FILE.json
  import-fx [-o OUT.yaml] FILE.csv                         (CSV header: date,base,quote,rate[,source])
`)
	return flag.ErrHelp
}

func pricesCmd(_ context.Context, args []string) error {
	if len(args) == 0 {
		return pricesUsage()
	}
	sub, ok := pricesSubcommands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "tokenmeter prices: unknown subcommand %q\n", args[0])
		return pricesUsage()
	}
	return sub(args[1:], os.Stdout)
}

// parseAt reads a -at flag: RFC 3339 or YYYY-MM-DD (00:00 UTC); empty is now.
func parseAt(s string) (time.Time, error) {
	if s == "" {
		return time.Now().UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-at %q: want RFC 3339 or YYYY-MM-DD", s)
	}
	return t, nil
}

// pricingFromConfig returns the config's pricing section with paths resolved.
func pricingFromConfig(path string) (pricing.Config, error) {
	cfg, err := app.Load(path)
	if err != nil {
		return pricing.Config{}, err
	}
	pc := cfg.Pricing
	for i, p := range pc.Catalogues {
		pc.Catalogues[i] = cfg.Resolve(p)
	}
	pc.Contracts, pc.FX = cfg.Resolve(pc.Contracts), cfg.Resolve(pc.FX)
	return pc, nil
}

func pricesCheck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("prices check", flag.ContinueOnError)
	atS := fs.String("at", "", "instant for the \"no price in force\" warning (default now)")
	cfgPath := fs.String("config", "", "check the catalogues, contracts and FX of this pipeline config")
	if err := fs.Parse(args); err != nil {
		return err
	}
	at, err := parseAt(*atS)
	if err != nil {
		return err
	}
	var pc pricing.Config
	if *cfgPath != "" {
		if pc, err = pricingFromConfig(*cfgPath); err != nil {
			return err
		}
	} else {
		pc.Catalogues = fs.Args()
	}
	if len(pc.Catalogues) == 0 {
		return errors.New("give catalogue files or -config CONFIG")
	}
	var files []*pricing.CatalogueFile
	for _, p := range pc.Catalogues {
		f, err := pricing.ReadCatalogue(p)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	problems := pricing.Check(files, pc.Catalogues, at)
	if pc.FX != "" {
		if fx, err := pricing.ReadFX(pc.FX); err == nil {
			problems = append(problems, pricing.CheckFXCoverage(fx, pc, at)...)
		}
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	nErr := 0
	for _, p := range problems {
		if p.Severity == pricing.SeverityError {
			nErr++
		}
	}
	if nErr == 0 {
		// The engine also validates contracts and FX against the catalogue.
		if _, err := pricing.Load(pc, nil); err != nil {
			fmt.Fprintln(stdout, "error:", err)
			nErr++
		}
	}
	models := 0
	for _, f := range files {
		models += len(f.Models)
	}
	fmt.Fprintf(stdout, "%d entries in %d file(s): %d error(s), %d warning(s)\n", models, len(files), nErr, len(problems)-countErrors(problems))
	if nErr > 0 {
		return fmt.Errorf("%d error(s)", nErr)
	}
	return nil
}

func countErrors(ps []pricing.Problem) int {
	n := 0
	for _, p := range ps {
		if p.Severity == pricing.SeverityError {
			n++
		}
	}
	return n
}

func loadEngine(cfgPath, catalogues string) (*pricing.Engine, error) {
	switch {
	case cfgPath != "":
		pc, err := pricingFromConfig(cfgPath)
		if err != nil {
			return nil, err
		}
		return pricing.Load(pc, nil)
	case catalogues != "":
		return pricing.Load(pricing.Config{Catalogues: strings.Split(catalogues, ",")}, nil)
	}
	return nil, errors.New("give -config CONFIG or -catalogue FILE[,FILE]")
}

func pricesShow(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("prices show", flag.ContinueOnError)
	atS := fs.String("at", "", "show the prices in force at this instant (default now)")
	cfgPath := fs.String("config", "", "pipeline config whose pricing section to load")
	cats := fs.String("catalogue", "", "comma-separated catalogue files (instead of -config)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	at, err := parseAt(*atS)
	if err != nil {
		return err
	}
	e, err := loadEngine(*cfgPath, *cats)
	if err != nil {
		return err
	}
	provider, model := fs.Arg(0), fs.Arg(1)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	if model == "" {
		fmt.Fprintf(tw, "PROVIDER\tMODEL\tVALID FROM\tVALID TO\tTIERS\n")
		for _, pm := range e.Models() {
			if provider != "" && pm[0] != provider {
				continue
			}
			info, err := e.Lookup(pm[0], pm[1], at)
			if err != nil {
				continue // not in force at `at`
			}
			tiers := make([]string, 0, len(info.Tiers))
			for t := range info.Tiers {
				tiers = append(tiers, t)
			}
			sort.Strings(tiers)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", info.Provider, info.Model, info.ValidFrom, orOpen(info.ValidTo), strings.Join(tiers, ","))
		}
		return nil
	}
	info, err := e.Lookup(provider, model, at)
	if err != nil {
		return err
	}
	fmt.Fprintf(tw, "%s/%s (as %q) in force at %s\n", info.Provider, info.Model, model, at.Format(time.RFC3339))
	fmt.Fprintf(tw, "valid [%s, %s)  catalogue %s  currency %s\n", info.ValidFrom, orOpen(info.ValidTo), info.Version, info.Currency)
	if info.LongContextThreshold > 0 {
		fmt.Fprintf(tw, "long context: input_tokens > %d bills every class at <tier>_long_context\n", info.LongContextThreshold)
	}
	fmt.Fprintf(tw, "source: %s\n\n", info.Source)
	fmt.Fprintf(tw, "TIER\tINPUT/M\tCACHE READ/M\tCACHE WRITE 5m/M\tCACHE WRITE 1h/M\tOUTPUT/M\tREASONING/M\tUNITS\n")
	tiers := make([]string, 0, len(info.Tiers))
	for t := range info.Tiers {
		tiers = append(tiers, t)
	}
	sort.Strings(tiers)
	for _, t := range tiers {
		r := info.Tiers[t]
		var units []string
		for _, u := range []struct {
			n string
			a pricing.Amount
		}{{"image", r.Image}, {"audio_second", r.AudioSecond}, {"request", r.Request}, {"tool_call", r.ToolCall}, {"web_search", r.WebSearch}} {
			if u.a.Set {
				units = append(units, u.n+"="+u.a.String())
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t, amt(r.Input, ""), amt(r.CacheRead, "=input"), amt(r.CacheWrite, "=input"),
			amt(r.CacheWrite1h, "=5m"), amt(r.Output, ""), amt(r.Reasoning, "=output"), strings.Join(units, " "))
	}
	return nil
}

func amt(a pricing.Amount, dflt string) string {
	if !a.Set {
		return dflt
	}
	return a.String()
}

func orOpen(s string) string {
	if s == "" {
		return "open"
	}
	return s
}

func pricesQuote(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("prices quote", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "pipeline config whose pricing section to load")
	cats := fs.String("catalogue", "", "comma-separated catalogue files (instead of -config)")
	atS := fs.String("at", "", "price in force at this instant (default now)")
	tenantID := fs.String("tenant", "", "tenant (selects its contracts)")
	tier := fs.String("tier", "standard", "service tier: standard, batch, flex, priority")
	cur := fs.String("currency", "", "billing currency (default: the pricing currency)")
	in := fs.Int64("input", 0, "input tokens (total, including cache reads)")
	cacheRead := fs.Int64("cache-read", 0, "cache read tokens (part of -input)")
	out := fs.Int64("output", 0, "output tokens (total, including reasoning)")
	reasoning := fs.Int64("reasoning", 0, "reasoning tokens (part of -output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("give PROVIDER MODEL")
	}
	at, err := parseAt(*atS)
	if err != nil {
		return err
	}
	e, err := loadEngine(*cfgPath, *cats)
	if err != nil {
		return err
	}
	p, err := e.Estimate(pricing.EstimateRequest{Tenant: *tenantID, Provider: fs.Arg(0), Model: fs.Arg(1), ServiceTier: *tier, At: at,
		InputTokens: *in, CacheReadInputTokens: *cacheRead, OutputTokens: *out, ReasoningTokens: *reasoning, BillingCurrency: *cur})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "price_id:        %s\ncontract:        %s\ntier:            %s\n", p.PriceID, orNone(p.ContractID), p.PricingTier)
	fmt.Fprintf(stdout, "cost by class:   input %s, cache_read %s, cache_write %s, output %s, reasoning %s, units %s (%s)\n",
		p.CostInput, p.CostCacheRead, p.CostCacheWrite, p.CostOutput, p.CostReasoning, p.CostUnits, p.PricingCurrency)
	fmt.Fprintf(stdout, "list cost:       %s %s\ncontracted cost: %s %s\neffective cost:  %s %s\ncache savings:   %s %s\n",
		p.ListCost, p.PricingCurrency, p.ContractedCost, p.PricingCurrency, p.EffectiveCost, p.PricingCurrency, p.CacheSavings, p.PricingCurrency)
	fmt.Fprintf(stdout, "billed:          %s %s effective, %s %s list (rate %s dated %s)\n",
		p.BilledEffectiveCost, p.BillingCurrency, p.BilledListCost, p.BillingCurrency, p.FXRate, p.FXDate)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none: list price)"
	}
	return s
}

func pricesImport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("prices import", flag.ContinueOnError)
	from := fs.String("from", "litellm", "input format (only litellm: model_prices_and_context_window.json)")
	validFrom := fs.String("valid-from", "", "valid_from stamped on every entry (YYYY-MM-DD, required)")
	source := fs.String("source", "https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json", "source stamped on every entry")
	readOn := fs.String("read-on", time.Now().UTC().Format(time.DateOnly), "date the file was read (YYYY-MM-DD)")
	version := fs.String("version", "", "catalogue version tag (default litellm-READ_ON)")
	providers := fs.String("provider", "", "comma-separated OTel provider names to keep (e.g. openai,anthropic); default all")
	outPath := fs.String("o", "", "write the catalogue YAML here (default stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from != "litellm" {
		return fmt.Errorf("-from %q: only litellm is supported", *from)
	}
	if fs.NArg() != 1 {
		return errors.New("give the LiteLLM JSON file")
	}
	in, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer in.Close()
	opt := pricing.LiteLLMOptions{ValidFrom: *validFrom, ReadOn: *readOn, Source: *source, Version: *version}
	if *providers != "" {
		opt.Providers = strings.Split(*providers, ",")
	}
	cat, skipped, err := pricing.ImportLiteLLM(in, opt)
	if err != nil {
		return err
	}
	for _, s := range skipped {
		fmt.Fprintln(os.Stderr, "skipped:", s)
	}
	if err := writeYAML(*outPath, stdout, cat); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "imported %d models, skipped %d; run `tokenmeter prices check` on the result\n", len(cat.Models), len(skipped))
	return nil
}

func pricesImportFX(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("prices import-fx", flag.ContinueOnError)
	outPath := fs.String("o", "", "FX YAML file to merge into (created if missing; default stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("give the CSV file (header date,base,quote,rate[,source])")
	}
	in, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer in.Close()
	add, err := pricing.ParseFXCSV(in, fs.Arg(0))
	if err != nil {
		return err
	}
	merged := &pricing.FXFile{}
	if *outPath != "" {
		if old, err := pricing.ReadFX(*outPath); err == nil {
			merged = old
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	// A row for an existing pair and date replaces it only if the rate is the
	// same; a different rate for a date already recorded is refused, because
	// priced events may already carry the old rate.
	idx := map[string]int{}
	for i, r := range merged.Rates {
		idx[r.Base+"/"+r.Quote+"@"+r.Date] = i
	}
	added := 0
	for _, r := range add.Rates {
		k := r.Base + "/" + r.Quote + "@" + r.Date
		if i, ok := idx[k]; ok {
			if !merged.Rates[i].Rate.D.Equal(r.Rate.D) {
				return fmt.Errorf("%s: already recorded as %s, CSV says %s; fix one of them by hand", k, merged.Rates[i].Rate.D, r.Rate.D)
			}
			continue
		}
		idx[k] = len(merged.Rates)
		merged.Rates = append(merged.Rates, r)
		added++
	}
	if err := pricing.ValidateFX(merged); err != nil {
		return err
	}
	var w io.Writer = stdout
	if *outPath != "" {
		f, err := os.Create(*outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if err := pricing.WriteFXYAML(w, merged); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d new rate(s), %d in total\n", added, len(merged.Rates))
	return nil
}

func writeYAML(path string, stdout io.Writer, v any) error {
	var w io.Writer = stdout
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return enc.Close()
}
