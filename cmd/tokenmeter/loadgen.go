package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/app"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/loadgen"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

func init() {
	register("loadgen", "play realistic AI traffic against a running pipeline through every ingest path (see docs/loadgen.md)", loadgenCmd)
}

func loadgenCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var c loadgen.Config
	fs.DurationVar(&c.Duration, "duration", 60*time.Second, "how long to play traffic")
	fs.Float64Var(&c.Rate, "rate", 200, "model calls per second (an agentic request counts all its calls)")
	target := fs.String("target", "", "collector HTTP API base URL (default: http://127.0.0.1<port of http.listen in CONFIG>)")
	otlpHTTP := fs.String("otlp", "", `OTLP/HTTP receiver host:port; "off" disables the otlp-http path (default: CONFIG's collector.otlp.http_listen)`)
	otlpGRPC := fs.String("otlp-grpc", "", `OTLP/gRPC receiver host:port; "off" disables the otlp-grpc path (default: CONFIG's collector.otlp.grpc_listen)`)
	kafka := fs.String("kafka", "", `Kafka brokers (comma-separated) for the kafka path; "off" disables it (default: CONFIG's kafka.brokers, else its embedded broker's listen address)`)
	fs.StringVar(&c.Token, "token", "demo-acme-token", "bearer token sent on every path")
	tenantID := fs.String("tenant", "", "tenant written into events (default: the tenant of --token in CONFIG)")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed: same seed and run id, same traffic")
	fs.StringVar(&c.RunID, "run-id", "", "id mixed into event, trace and span ids (default: from the start time, so runs never collide)")
	paths := fs.String("paths", "", "comma-separated paths to use: http-json,http-native,otlp-http,otlp-grpc,kafka (default: all with an address)")
	fs.BoolVar(&c.NoBadEvents, "no-bad-events", false, "do not send the few deliberately bad events")
	fs.IntVar(&c.BatchSize, "batch-size", 100, "most items per HTTP request")
	summaryJSON := fs.String("summary-json", "", "also write the summary as JSON to this file")
	noSpend := fs.Bool("no-spend", false, "do not price the expected totals with CONFIG's pricing section")
	strict := fs.Bool("strict", false, "exit non-zero when any good event or outcome was not accepted")
	gw := fs.String("gateway", "", `metering gateway base URL: workflows with a key in CONFIG's gateway.keys call through it; "off" disables (default: CONFIG's gateway.listen when its roles include gateway)`)
	fs.BoolVar(&c.Story, "story", false, "play the demo's history (past event times, as fast as accepted) instead of live traffic; see docs/loadgen.md")
	storyFrom := fs.String("story-from", "", "first day of the history, YYYY-MM-DD (default: the 1st of the month three months ago)")
	storyTo := fs.String("story-to", "", "day after the history's last, YYYY-MM-DD (default: today, UTC)")
	fs.Float64Var(&c.StoryScale, "story-scale", 1, "multiply the history's daily volumes")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if c.Story {
		today := time.Now().UTC().Truncate(24 * time.Hour)
		c.StoryTo, c.StoryFrom = today, time.Date(today.Year(), today.Month()-3, 1, 0, 0, 0, 0, time.UTC)
		for _, f := range []struct {
			s   string
			dst *time.Time
		}{{*storyFrom, &c.StoryFrom}, {*storyTo, &c.StoryTo}} {
			if f.s == "" {
				continue
			}
			if *f.dst, err = time.Parse(time.DateOnly, f.s); err != nil {
				return fmt.Errorf("story day %q is not YYYY-MM-DD", f.s)
			}
		}
		if *paths == "" {
			*paths = string(loadgen.PathHTTPJSON)
		}
	}
	c.Paths = loadgen.ParsePaths(*paths)
	if *gw != "off" && (*gw != "" || cfg.Has(app.RoleGateway)) {
		c.Gateway = *gw
		if c.Gateway == "" {
			c.Gateway = targetFromListen(cfg.Gateway.Listen)
		}
		c.GatewayKeys = map[string]string{}
		for _, k := range cfg.Gateway.Keys {
			if k.Workflow != "" && c.GatewayKeys[k.Workflow] == "" {
				c.GatewayKeys[k.Workflow] = k.Key
			}
		}
	}
	c.Target = *target
	if c.Target == "" {
		c.Target = targetFromListen(cfg.HTTP.Listen)
	}
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	c.OTLPHTTP = flagOrConfig(*otlpHTTP, deref(cfg.Collector.OTLP.HTTPListen))
	c.OTLPGRPC = flagOrConfig(*otlpGRPC, deref(cfg.Collector.OTLP.GRPCListen))
	switch *kafka {
	case "off", "none":
	case "":
		c.KafkaBrokers = cfg.Kafka.Brokers
		if len(c.KafkaBrokers) == 0 && cfg.Kafka.Embedded.Listen != "" {
			c.KafkaBrokers = []string{cfg.Kafka.Embedded.Listen}
		}
	default:
		c.KafkaBrokers = strings.Split(*kafka, ",")
	}
	c.KafkaTopic = cfg.Kafka.Topics.Usage
	c.KafkaOpts = cfg.Kafka.ClientOpts()
	c.Tenant = *tenantID
	if c.Tenant == "" {
		if c.Tenant, err = tenantOfToken(cfg, c.Token); err != nil {
			return err
		}
	}
	if !*noSpend {
		// Price what is sent with the pipeline's own engine, so the summary
		// says what spend the pipeline should report.
		if price, err := pricerFor(cfg, c.Tenant); err != nil {
			fmt.Fprintf(os.Stderr, "tokenmeter loadgen: not pricing the expected totals: %v\n", err)
		} else {
			c.Price = price
		}
	}

	if c.Story {
		fmt.Fprintf(os.Stderr, "tokenmeter loadgen: the demo history %s .. %s against %s, tenant %s, seed %d\n",
			c.StoryFrom.Format(time.DateOnly), c.StoryTo.Format(time.DateOnly), c.Target, c.Tenant, c.Seed)
	} else {
		fmt.Fprintf(os.Stderr, "tokenmeter loadgen: %.0f calls/s for %s against %s (otlp-http %q, otlp-grpc %q, kafka %q), tenant %s, seed %d\n",
			c.Rate, c.Duration, c.Target, c.OTLPHTTP, c.OTLPGRPC, strings.Join(c.KafkaBrokers, ","), c.Tenant, c.Seed)
	}
	c.Progress = os.Stderr
	sum, err := loadgen.Run(ctx, c)
	if err != nil {
		return err
	}
	sum.Print(os.Stdout)
	if *summaryJSON != "" {
		b, err := json.MarshalIndent(sum, "", "  ")
		if err != nil {
			return fmt.Errorf("summary: %w", err)
		}
		if err := os.WriteFile(*summaryJSON, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("summary: %w", err)
		}
	}
	if sum.Accepted() == 0 {
		return errors.New("the collector accepted no usage at all (see the summary above)")
	}
	if n := sum.GoodFailed(); *strict && n > 0 {
		return fmt.Errorf("%d good events or outcomes were not accepted (see the summary above)", n)
	}
	return nil
}

// flagOrConfig picks an address: the flag ("off" disables), else the listen
// address from the config made reachable from this machine.
func flagOrConfig(flagValue, listen string) string {
	switch flagValue {
	case "off", "none":
		return ""
	case "":
		if listen == "" {
			return ""
		}
		return strings.TrimPrefix(targetFromListen(listen), "http://")
	}
	return flagValue
}

// targetFromListen turns a listen address (":8080", "0.0.0.0:8080") into a
// URL a client on the same machine can reach.
func targetFromListen(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://127.0.0.1:8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// tenantOfToken finds the tenant a bearer token authenticates in cfg, so the
// events name the tenant the collector will stamp on them.
func tenantOfToken(cfg *app.Config, token string) (string, error) {
	reg, err := tenant.NewRegistry(cfg.Tenants)
	if err != nil {
		return "", fmt.Errorf("%s tenants: %w", cfg.Path, err)
	}
	t, ok := reg.Authenticate(token)
	if !ok {
		ids := make([]string, 0, len(reg.All()))
		for _, t := range reg.All() {
			ids = append(ids, t.ID)
		}
		return "", fmt.Errorf("--token does not authenticate any tenant of %s (tenants: %s); pass --tenant to send anyway",
			cfg.Path, strings.Join(ids, ", "))
	}
	return t.ID, nil
}

// pricerFor prices events as the pipeline's processor does: CONFIG's
// catalogues, contracts and FX, in the tenant's reporting currency.
func pricerFor(cfg *app.Config, tenantID string) (func(*event.UsageEvent) (decimal.Decimal, string, error), error) {
	if len(cfg.Pricing.Catalogues) == 0 {
		return nil, errors.New("CONFIG has no pricing.catalogues")
	}
	engine, err := pricing.Load(cfg.Pricing, cfg.Resolve)
	if err != nil {
		return nil, err
	}
	currency := "USD"
	for _, t := range cfg.Tenants {
		if t.ID == tenantID && t.ReportingCurrency != "" {
			currency = t.ReportingCurrency
		}
	}
	return func(ev *event.UsageEvent) (decimal.Decimal, string, error) {
		out := event.PricedUsageEvent{UsageEvent: *ev}
		if err := engine.Price(ev, currency, &out); err != nil {
			return decimal.Decimal{}, "", err
		}
		return out.BilledEffectiveCost.Decimal(), out.BillingCurrency, nil
	}, nil
}
