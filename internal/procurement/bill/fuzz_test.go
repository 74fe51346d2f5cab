package bill

import (
	"os"
	"testing"
)

// The importers read files from outside: any input gives lines or an error,
// never a panic, and every line's amount is a decimal.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"openai_costs.json", "anthropic_cost_report.json", "focus_azure.csv", "focus_aws.csv", "focus_gcp.csv"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`[{"object":"page","data":[{"results":[{"object":"organization.costs.result","amount":{"value":1e400}}]}]}]`))
	f.Add([]byte("BilledCost,BillingCurrency,ChargePeriodStart,PricingUnit,PricingQuantity\n1,USD,2026-01-01T00:00:00Z,1M Tokens,-1e30\n"))
	cfg := Config{Sources: []Source{
		{Provider: "openai", Format: FormatOpenAICosts, Files: []string{"x"}},
		{Provider: "anthropic", Format: FormatAnthropicCost, Files: []string{"x"}},
		{Format: FormatFOCUS, Files: []string{"x"}, Models: []ModelMap{{Match: `(?P<model>\w+)-(?P<class>input|output)`}}},
	}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for i := range cfg.Sources {
			lines, err := Parse(&cfg.Sources[i], "fuzz", b)
			if err != nil {
				continue
			}
			for _, l := range lines {
				_ = l.Amount.String()
				if l.HasQuantity && l.Quantity < 0 {
					t.Fatalf("negative quantity %+v", l)
				}
			}
		}
	})
}
