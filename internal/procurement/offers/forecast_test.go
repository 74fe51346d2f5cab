package offers

import (
	"context"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/forecast"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

func TestForecastScenariosFeedTheSimulator(t *testing.T) {
	plan, err := forecast.Read("testdata/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := prices(t)
	eng, err := pricing.New(p.Catalogues, p.Names, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := ForecastScenarios{Plan: plan, Engine: eng, Scales: AdoptionScales(map[string]int64{"low": 50, "expected": 100, "high": 200})}
	sc, err := src.Scenarios(context.Background(), "acme", "openai", []string{"2027-01", "2027-02"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc) != 3 || sc[0].Name != "low" || sc[2].Name != "high" {
		t.Fatalf("scenarios %+v", sc)
	}
	// expected, January: 100 × 0.5 × 10 × 2 = 1 000 calls → 1 000 000 input
	// (500 000 cached), 200 000 output. High doubles adoption to 1 (capped).
	jan := sc[1].Usage[0]
	if jan.Period != "2027-01" || jan.Model != "m1" || jan.Requests != 1000 || jan.InputTokens != 1_000_000 ||
		jan.CacheReadInputTokens != 500_000 || jan.OutputTokens != 200_000 || jan.LongContext {
		t.Fatalf("expected january %+v", jan)
	}
	if h := sc[2].Usage[0]; h.Requests != 2000 {
		t.Fatalf("high january %+v", h)
	}
	// Through the simulator: January + February at list, m1 2.00/8.00 (cache
	// reads at the input price): 1M × 2 + 0.2M × 8 = 3.60 a month; the high
	// scenario 7.20; a 10 % offer 6.48 over two months of expected.
	s := sim(t, "tenant: acme\nprovider: openai\nwindow: {from: 2027-01, to: 2027-01}\nterm: {from: 2027-01, to: 2027-02}\noffers:\n  - id: o\n    discount_percent: '10'\n")
	sh, err := s.Compare(context.Background(), nil, src)
	if err != nil {
		t.Fatal(err)
	}
	exp := sh.Rows[2]
	if exp.Scenario != "expected" {
		t.Fatalf("rows %+v", sh.Rows)
	}
	eq(t, "expected list", exp.Results[BaselineList].Cost, "7.2")
	eq(t, "expected offer", exp.Results["o"].Cost, "6.48")
	eq(t, "high list", sh.Rows[3].Results[BaselineList].Cost, "14.4")
}
