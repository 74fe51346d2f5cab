package forecast

import (
	"os"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// A plan file is outside input: parsing and validating any bytes returns a
// plan or an error, never a panic; a plan that parses also builds or errors.
func FuzzParsePlan(f *testing.F) {
	for _, p := range []string{"testdata/plan.yaml", "testdata/bad_plan.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("tenant: a\nyear: 2026\nreporting_currency: USD\nworkflows: [{name: x}]\n"))
	eng, err := pricing.Load(pricing.Config{Catalogues: []string{"testdata/catalogue.yaml"}, Contracts: "testdata/contracts.yaml"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		_, _ = Build(p, eng, Options{})
	})
}
