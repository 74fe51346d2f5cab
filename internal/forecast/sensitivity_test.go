package forecast

import (
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// With every workflow below full adoption, 30% more adoption is exactly a
// 30% overrun: cost is linear in active users. Nothing in the model says
// "30%"; the rule falls out of users × sessions × calls × tokens × price.
func TestSensitivityAdoptionThirtyPercent(t *testing.T) {
	p := testPlan(t)
	p.Workflows[0].Adoption = map[string]pricing.Amount{"2026-01": amt(d("0.5"))}
	p.Workflows[1].Adoption = map[string]pricing.Amount{"2026-01": amt(d("0.5"))}
	s, err := RunSensitivity(p, testEngine(t), []string{KnobAdoption, KnobTokens, KnobPrice}, DefaultSteps)
	if err != nil {
		t.Fatal(err)
	}
	// base by hand: support 6×11.115 + 6×5.5575... (half of TestBuild's H1/H2 at 0.5 adoption all year)
	// support: 1000 calls × (0.00285 Jan-Jun, 0.001425 Jul-Dec) × 7.8 = 6×22.23 + 6×11.115 = 200.07
	// agent: half of 66.339 × 12 = 398.034
	eq(t, "base", s.Base, "598.104")
	for _, row := range s.Rows {
		for _, c := range row.Cells {
			if c.Percent == 30 {
				eq(t, row.Knob+" +30%", c.Total, "777.5352") // 598.104 × 1.3
			}
			if c.Percent == -30 {
				eq(t, row.Knob+" -30%", c.Total, "418.6728") // × 0.7
			}
		}
	}
}

// Near full adoption the cap at 100% of eligible users bites, so adoption
// moves the total less than price does, and the grid ranks price first.
func TestSensitivityRanksDrivers(t *testing.T) {
	s, err := RunSensitivity(testPlan(t), testEngine(t), []string{KnobAdoption, KnobPrice}, DefaultSteps)
	if err != nil {
		t.Fatal(err)
	}
	if s.Rows[0].Knob != KnobPrice {
		t.Fatalf("first driver %s, want price", s.Rows[0].Knob)
	}
	// price swing = 0.6 × 1129.518
	eq(t, "price swing", s.Rows[0].Swing, "677.7108")
	// adoption +30%: agent already at 100% (no change), support Jan-Mar 0.5 -> 0.65
	// (+30% of 66.69 = 20.007), Apr-Dec at 100% (no change): 1129.518 + 20.007.
	for _, c := range s.Rows[1].Cells {
		if c.Percent == 30 {
			eq(t, "adoption +30%", c.Total, "1149.525")
		}
	}
}
