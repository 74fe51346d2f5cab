package bill

import (
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/configerr"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

func engine(t *testing.T) *pricing.Engine {
	t.Helper()
	c, err := pricing.ReadCatalogue("testdata/catalogue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := pricing.New([]*pricing.CatalogueFile{c}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// usd is a metered row billed in USD (reporting currency = pricing currency).
func usd(hour, provider, project, model, class string, tokens int64, cost string) Metered {
	return Metered{Hour: at(hour), Provider: provider, Project: project, Model: model, Class: class, Tokens: tokens,
		Cost: d(cost), PricingCurrency: "USD", BilledCost: d(cost), BillingCurrency: "USD", FXRate: d("1")}
}

func load(t *testing.T) (*Config, []Line) {
	t.Helper()
	cfg, err := Read("testdata/bill.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, lines
}

func TestImportFormats(t *testing.T) {
	_, lines := load(t)
	if len(lines) != 10 {
		t.Fatalf("%d lines, want 2 OpenAI + 3 Anthropic + 1 Azure + 2 AWS + 2 Google", len(lines))
	}
	type want struct{ provider, project, model, class, day, amount, cur string }
	ws := []want{
		{"openai", "proj_demo", "gpt-4o-2024-08-06", "input", "2026-11-10", "2.5", "USD"},
		{"openai", "proj_demo", "gpt-4o-2024-08-06", "output", "2026-11-10", "1", "USD"},
		{"anthropic", "wrkspc_a", "claude-sonnet-4-5-20250929", "input", "2026-11-10", "9", "USD"},     // "900" cents
		{"anthropic", "wrkspc_a", "claude-sonnet-4-5-20250929", "output", "2026-11-10", "2.75", "USD"}, // "275" cents
		{"anthropic", "wrkspc_b", "claude-sonnet-4-5-20250929", "input", "2026-11-10", "3", "USD"},
		{"azure.ai.openai", "sub-1", "gpt-4o", "input", "2026-11-10", "20.228", "HKD"},
		{"aws.bedrock", "444455556666", "anthropic.claude-sonnet-4-5", "input", "2026-11-10", "3", "USD"},
		{"aws.bedrock", "444455556666", "anthropic.claude-sonnet-4-5", "output", "2026-11-10", "1.5", "USD"},
		{"gcp.vertex_ai", "proj-gcp", "gemini-2.5-flash", "input", "2026-11-09", "2", "USD"}, // Pacific day
		{"gcp.vertex_ai", "proj-gcp", "gemini-2.5-flash", "input", "2026-11-10", "6", "USD"},
	}
	for i, w := range ws {
		l := lines[i]
		if l.Provider != w.provider || l.Project != w.project || l.Model != w.model || l.Class != w.class || l.Day != w.day ||
			!l.Amount.Equal(d(w.amount)) || l.Currency != w.cur {
			t.Errorf("line %d = %+v, want %+v", i, l, w)
		}
	}
	az := lines[5]
	if !az.HasQuantity || az.Quantity != 1_000_000 || !az.UnitPrice.Equal(d("0.0000026")) || az.PricingCurrency != "USD" || !az.PricingAmount.Equal(d("2.60")) {
		t.Errorf("azure quantity/price: %+v", az)
	}
	if aws := lines[7]; !aws.HasQuantity || aws.Quantity != 100_000 {
		t.Errorf("aws output quantity: %+v", aws)
	}
}

// Every gap is seeded with a cause; the reconciliation must explain each to
// the last digit and leave no residual.
func TestReconciliationFullyExplainedBySeededCauses(t *testing.T) {
	cfg, lines := load(t)
	metered := []Metered{
		// OpenAI: metered = billed.
		usd("2026-11-10T09:00:00Z", "openai", "proj_demo", "gpt-4o", "input", 1_000_000, "2.50"),
		usd("2026-11-10T09:00:00Z", "openai", "proj_demo", "gpt-4o", "output", 100_000, "1.00"),
		// Anthropic wrkspc_a: 10.00 metered, billed 11.75; 2 DLQ'd events
		// (1.50) and 1 incomplete event (0.25) explain the rest.
		usd("2026-11-10T12:00:00Z", "anthropic", "wrkspc_a", "claude-sonnet-4-5", "input", 2_666_667, "8.000001"),
		usd("2026-11-10T12:00:00Z", "anthropic", "wrkspc_a", "claude-sonnet-4-5", "output", 133_333, "1.999999"),
		// (wrkspc_b: never metered, 3.00 billed.)
		// Azure, billed in HKD: 1M input metered at 2.50 USD × 7.80 = 19.50 HKD;
		// the bill prices 2.60 USD (unit price) at 7.78 (FX): 20.228 HKD.
		{Hour: at("2026-11-10T03:00:00Z"), Provider: "azure.ai.openai", Project: "sub-1", Model: "gpt-4o", Class: "input",
			Tokens: 1_000_000, Cost: d("2.50"), PricingCurrency: "USD", BilledCost: d("19.50"), BillingCurrency: "HKD", FXRate: d("7.80")},
		// AWS: 0.9M of the 1M billed input tokens metered: 0.30 never metered.
		usd("2026-11-10T08:00:00Z", "aws.bedrock", "444455556666", "anthropic.claude-sonnet-4-5", "input", 900_000, "2.70"),
		usd("2026-11-10T08:00:00Z", "aws.bedrock", "444455556666", "anthropic.claude-sonnet-4-5", "output", 100_000, "1.50"),
		// Google bills Pacific days: 05:00Z is the 9th there, 03:00Z on the 11th is the 10th.
		usd("2026-11-10T05:00:00Z", "gcp.vertex_ai", "proj-gcp", "gemini-2.5-flash", "input", 1, "2.00"),
		usd("2026-11-10T10:00:00Z", "gcp.vertex_ai", "proj-gcp", "gemini-2.5-flash", "input", 1, "5.00"),
		usd("2026-11-11T03:00:00Z", "gcp.vertex_ai", "proj-gcp", "gemini-2.5-flash", "input", 1, "1.00"),
	}
	ev := Evidence{
		DLQ:        []Known{{Hour: at("2026-11-10T13:00:00Z"), Provider: "anthropic", Project: "wrkspc_a", Model: "claude-sonnet-4-5-20250929", Events: 2, Amount: d("1.50")}},
		Incomplete: []Known{{Hour: at("2026-11-10T14:00:00Z"), Provider: "anthropic", Project: "wrkspc_a", Model: "claude-sonnet-4-5", Events: 1, Amount: d("0.25")}},
	}
	r, err := New(cfg, engine(t), "")
	if err != nil {
		t.Fatal(err)
	}
	res, alerts, err := r.Reconcile(lines, metered, ev)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		diff    string
		explain map[string]string
	}
	wants := map[string]want{
		"2026-11-10 anthropic wrkspc_a claude-sonnet-4-5":                 {"1.75", map[string]string{CauseDLQ: "1.5", CauseIncomplete: "0.25"}},
		"2026-11-10 anthropic wrkspc_b claude-sonnet-4-5":                 {"3", map[string]string{CauseNeverMetered: "3"}},
		"2026-11-10 azure.ai.openai sub-1 gpt-4o":                         {"0.728", map[string]string{CauseFX: "-0.052", CauseUnitPrice: "0.78"}},
		"2026-11-10 aws.bedrock 444455556666 anthropic.claude-sonnet-4-5": {"0.3", map[string]string{CauseNeverMetered: "0.3"}},
		"2026-11-10 openai proj_demo gpt-4o":                              {"0", map[string]string{}},
		"2026-11-09 gcp.vertex_ai proj-gcp gemini-2.5-flash":              {"2", map[string]string{CauseDayBoundary: "2"}},
		"2026-11-10 gcp.vertex_ai proj-gcp gemini-2.5-flash":              {"-1", map[string]string{CauseDayBoundary: "-1"}},
		"2026-11-11 gcp.vertex_ai proj-gcp gemini-2.5-flash":              {"-1", map[string]string{CauseDayBoundary: "-1"}},
	}
	if len(res) != len(wants) {
		t.Errorf("%d results, want %d", len(res), len(wants))
	}
	for _, x := range res {
		k := strings.Join([]string{x.Day, x.Provider, x.Project, x.Model}, " ")
		w, ok := wants[k]
		if !ok {
			t.Errorf("unexpected result %s: %+v", k, x)
			continue
		}
		if !x.Difference.Equal(d(w.diff)) {
			t.Errorf("%s: difference %s, want %s", k, x.Difference, w.diff)
		}
		got := map[string]string{}
		for _, e := range x.Explained {
			got[e.Cause] = e.Amount.String()
		}
		for c, a := range w.explain {
			if g, ok := got[c]; !ok || !d(g).Equal(d(a)) {
				t.Errorf("%s: %s = %q, want %s (all: %v)", k, c, got[c], a, got)
			}
		}
		if len(got) != len(w.explain) {
			t.Errorf("%s: explanations %v, want %v", k, got, w.explain)
		}
		if !x.Residual.IsZero() || x.Problem != "" {
			t.Errorf("%s: residual %s problem %q, want 0", k, x.Residual, x.Problem)
		}
	}
	if len(alerts) != 0 {
		t.Errorf("alerts %+v, want none", alerts)
	}

	// An unexplained 0.10 on OpenAI's day (3.50 billed) is 2.9 % > 1 %: alert.
	metered[1].Cost, metered[1].BilledCost = d("0.90"), d("0.90")
	res, alerts, err = r.Reconcile(lines, metered, ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].Provider != "openai" || !alerts[0].Residual.Equal(d("0.10")) || !alerts[0].Billed.Equal(d("3.50")) {
		t.Errorf("alerts = %+v, want one for openai 0.10 of 3.50", alerts)
	}
}

func TestConfigValidatePaths(t *testing.T) {
	c := Config{Sources: []Source{{Format: "xlsx"}, {Format: FormatOpenAICosts, Files: []string{"x"}, DayTimeZone: "Mars/Olympus",
		Models: []ModelMap{{Match: "("}, {Match: "a", Class: "tokens"}}}}}
	c.SetDefaults()
	err := c.Validate()
	want := []string{"sources[0].format", "sources[0].files", "sources[1].provider", "sources[1].day_time_zone",
		"sources[1].models[0].match", "sources[1].models[1].class", "sources[1].models[1].model"}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %s in %v", w, err)
		}
	}
	if n := len(configerr.Leaves(err)); n != len(want) {
		t.Errorf("%d problems, want %d: %v", n, len(want), err)
	}
}
