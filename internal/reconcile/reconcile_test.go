package reconcile

import (
	"math/rand"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/forecast"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

func testEngine(t *testing.T) *pricing.Engine {
	t.Helper()
	eng, err := pricing.Load(pricing.Config{Catalogues: []string{"testdata/catalogue.yaml"}, Contracts: "testdata/contracts.yaml"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func testPlan(t *testing.T) *forecast.Plan {
	t.Helper()
	p, err := forecast.Read("testdata/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func eq(t *testing.T, what string, got decimal.Decimal, want string) {
	t.Helper()
	if !got.Equal(d(want)) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

func TestPhaseAddsUp(t *testing.T) {
	p := testPlan(t)
	ph := Phase(p)
	eq(t, "Jan", ph[1], "83.33")
	eq(t, "Mar", ph[3], "83.34")
	p.Envelope = &forecast.Envelope{Annual: pricing.Amount{D: d("1000000"), Set: true}, Phasing: forecast.PhasingEven}
	ph = Phase(p)
	sum := decimal.Zero
	for m := 1; m <= 12; m++ {
		sum = sum.Add(ph[m])
	}
	eq(t, "even Jan", ph[1], "83333.33")
	eq(t, "even Dec", ph[12], "83333.37")
	eq(t, "even sum", sum, "1000000")
}

// The plan (see forecast's hand computation) totals HKD 1129.518 against an
// envelope of 1000. The options, each re-worked by hand:
//
//	cut agent: its whole year, 12 × 66.339                            = 796.068
//	route 50% of support to openai/small (0.000285 USD a call):
//	  Jan-Mar 1000 calls × (0.5×0.00285 + 0.5×0.000285) × 7.8 = 12.2265 (was 22.23)
//	  Apr-Jun 2000 calls                                      = 24.453  (was 44.46)
//	  Jul-Dec 2000 calls × (0.5×0.001425 + 0.5×0.000285) × 7.8 = 13.338  (was 22.23)
//	  saving 3×10.0035 + 3×20.007 + 6×8.892                            = 143.3835
//	shorten agent prompts 20%: 1600 input (400 read, 320 written, 880 uncached):
//	  (880×3 + 400×0.3 + 320×3.75 + 300×15) × 0.9 / 1e6 × 1000 × 7.8 = 59.3892 a month
//	  saving 12 × (66.339 − 59.3892)                                   = 83.3976
func TestRunRanksOptionsWithIndependentSavings(t *testing.T) {
	rep, err := Run(testPlan(t), testEngine(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "bottom-up", rep.BottomUp, "1129.518")
	eq(t, "envelope", rep.Envelope, "1000")
	eq(t, "gap", rep.Gap, "129.518")
	eq(t, "Jan gap", rep.Months[0].Gap, "5.239") // 88.569 − 83.33
	if len(rep.Options) != 3 {
		t.Fatalf("options %+v", rep.Options)
	}
	want := []struct {
		wf, kind, saving string
		closes           bool
		gapAfter         string
	}{
		{"agent", forecast.LeverCut, "796.068", true, "-666.55"},
		{"support", forecast.LeverRoute, "143.3835", true, "-809.9335"},
		{"agent", forecast.LeverShorten, "83.3976", false, "-809.9335"}, // agent already cut
	}
	for i, w := range want {
		o := rep.Options[i]
		if o.Rank != i+1 || o.Workflow != w.wf || o.Lever.Kind != w.kind || o.ClosesAlone != w.closes {
			t.Errorf("option %d = %+v, want %+v", i+1, o, w)
		}
		eq(t, o.What, o.Saving, w.saving)
		eq(t, o.What+" gap after", o.GapAfter, w.gapAfter)
	}
	if rep.Options[1].UX != "quality risk: low on simple steps" || !rep.Closes {
		t.Errorf("ux %q closes %v", rep.Options[1].UX, rep.Closes)
	}
}

// From April, with Q1 closed at actuals of 100 a month, options can only
// change April-December.
func TestRunWithActualsToDate(t *testing.T) {
	cfg := Config{From: 4, Actuals: map[forecast.Month]decimal.Decimal{1: d("100"), 2: d("100"), 3: d("100")}}
	rep, err := Run(testPlan(t), testEngine(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 300 actual + (1129.518 − 3 × 88.569) model
	eq(t, "bottom-up", rep.BottomUp, "1163.811")
	if !rep.Months[0].Actual || rep.Months[3].Actual {
		t.Error("actual flags")
	}
	savings := map[string]string{forecast.LeverCut: "597.051", forecast.LeverRoute: "113.373", forecast.LeverShorten: "62.5482"}
	for _, o := range rep.Options {
		eq(t, o.What, o.Saving, savings[o.Lever.Kind])
	}
}

func TestNotOverHasNoOptions(t *testing.T) {
	p := testPlan(t)
	p.Envelope.Annual = pricing.Amount{D: d("2000"), Set: true}
	p.Envelope.Quarters = map[string]pricing.Amount{"Q1": {D: d("500"), Set: true}, "Q2": {D: d("500"), Set: true}, "Q3": {D: d("500"), Set: true}, "Q4": {D: d("500"), Set: true}}
	rep, err := Run(p, testEngine(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Over() || len(rep.Options) != 0 || !rep.Closes {
		t.Fatalf("%+v", rep)
	}
	eq(t, "gap", rep.Gap, "-870.482")
}

// January by hand (forecast: support 1000 calls = 22.23, agent 1000 calls = 66.339):
// actual support on openai/big 1200 calls (1,320,000 input of which 600,000
// cache reads, 240,000 output) cost USD 3.80 = HKD 29.45 at the day's rate;
// 300 unplanned calls on openai/small (300,000 input, 60,000 output) cost
// USD 0.108 = HKD 0.837; agent made no calls.
//
//	variance  = 30.287 − 88.569                                   = −58.282
//	volume    = (1500 − 2000) × 88.569 / 2000                     = −22.14225
//	vol+mix   = (1200 × 0.02223 − 22.23) + 0.108 × 7.8 − 66.339  = −61.0506
//	mix       = −61.0506 + 22.14225                               = −38.90835
//	efficiency= (3.66 − 1200 × 0.00285) × 7.8                     =   1.872
//	price     = (3.80 − 3.66) × 7.8                               =   1.092
//	fx        = (29.45 − 3.80×7.8) + (0.837 − 0.108×7.8)          =  −0.1954
func TestBridgeHandComputed(t *testing.T) {
	p, eng := testPlan(t), testEngine(t)
	base, err := forecast.Build(p, eng, forecast.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acts := []Actual{
		{Month: 1, Workflow: "support", Model: "openai/big", Calls: 1200,
			Tokens:      forecast.ClassTokens{Input: d("1320000"), CacheRead: d("600000"), Output: d("240000")},
			CostPricing: d("3.80"), Cost: d("29.45")},
		{Month: 1, Workflow: "support", Model: "openai/small", Calls: 300,
			Tokens:      forecast.ClassTokens{Input: d("300000"), Output: d("60000")},
			CostPricing: d("0.108"), Cost: d("0.837")},
	}
	rows, err := Bridge(p, eng, base, acts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("rows %+v", rows)
	}
	r := rows[0]
	eq(t, "forecast", r.Forecast, "88.569")
	eq(t, "actual", r.Actual, "30.287")
	eq(t, "variance", r.Variance, "-58.282")
	eq(t, "volume", r.Volume, "-22.14225")
	eq(t, "mix", r.Mix, "-38.90835")
	eq(t, "efficiency", r.Efficiency, "1.872")
	eq(t, "price", r.Price, "1.092")
	eq(t, "fx", r.FX, "-0.1954")
	eq(t, "sum", r.Sum(), "-58.282")
	if len(r.Unplanned) != 1 || r.Unplanned[0] != "support openai/small" {
		t.Errorf("unplanned %v", r.Unplanned)
	}
}

// Whatever the actuals, including volumes that divide into repeating
// decimals, the effects add up to the variance exactly.
func TestBridgeAlwaysAddsUp(t *testing.T) {
	p, eng := testPlan(t), testEngine(t)
	p.Workflows[0].EligibleUsers = pricing.Amount{D: d("0.3"), Set: true} // 3 planned calls in Jan... 0.15×10×2
	base, err := forecast.Build(p, eng, forecast.Options{MonthlyCap: map[string]decimal.Decimal{"agent": d("50")}})
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewSource(7))
	models := []string{"openai/big", "openai/small", "anthropic/claude-x", "openai/unknown"}
	for iter := 0; iter < 200; iter++ {
		var acts []Actual
		for _, wf := range []string{"support", "agent", "other"} {
			for _, m := range models {
				if rnd.Intn(2) == 0 {
					continue
				}
				in := rnd.Int63n(1e6)
				cr := rnd.Int63n(in + 1)
				out := rnd.Int63n(1e5)
				acts = append(acts, Actual{Month: forecast.Month(1 + rnd.Intn(12)), Workflow: wf, Model: m, Calls: rnd.Int63n(997),
					Tokens:      forecast.ClassTokens{Input: decimal.NewFromInt(in), CacheRead: decimal.NewFromInt(cr), Output: decimal.NewFromInt(out)},
					CostPricing: decimal.New(rnd.Int63n(1e9), -7), Cost: decimal.New(rnd.Int63n(1e10), -7)})
			}
		}
		seen := map[[3]any]bool{}
		var uniq []Actual
		for _, a := range acts {
			k := [3]any{a.Month, a.Workflow, a.Model}
			if !seen[k] {
				seen[k] = true
				uniq = append(uniq, a)
			}
		}
		rows, err := Bridge(p, eng, base, uniq)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if !r.Sum().Equal(r.Variance) {
				t.Fatalf("iter %d month %d: effects %s != variance %s (%+v)", iter, r.Month, r.Sum(), r.Variance, r)
			}
		}
	}
}

// Shown at cents, the effects still add up to the variance shown: here
// -22.14225, -38.90835, 1.872, 1.092, -0.1954 round (half even) to -22.14,
// -38.91, 1.87, 1.09, -0.20 = -58.29, one cent off -58.28; largest remainder
// moves one of them by a cent so the row shows -58.28.
func TestBridgeShownAddsUpToTheCent(t *testing.T) {
	r := BridgeRow{Variance: d("-58.282"), Volume: d("-22.14225"), Mix: d("-38.90835"), Efficiency: d("1.872"), Price: d("1.092"), FX: d("-0.1954")}
	v, a, b, c, e, f := r.Shown(2)
	eq(t, "variance shown", v, "-58.28")
	eq(t, "effects shown", a.Add(b).Add(c).Add(e).Add(f), "-58.28")
}
