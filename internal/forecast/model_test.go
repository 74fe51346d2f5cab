package forecast

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/configerr"
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

func testPlan(t *testing.T) *Plan {
	t.Helper()
	p, err := Read("testdata/plan.yaml")
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

// The support workflow, by hand: 100 eligible users, half active Jan-Mar and
// all from April; 10 sessions × 2 calls each. A call is 1000 input tokens
// (half read from cache) and 200 output on openai/big:
//
//	Jan-Jun: 500×2/1e6 + 500×0.5/1e6 + 200×8/1e6 = 0.00285 USD
//	Jul-Dec (price halved on 2026-07-01):        0.001425 USD
//	Jan-Mar 1000 calls × 0.00285 × 7.80 = 22.23 HKD
//	Apr-Jun 2000 calls × 0.00285 × 7.80 = 44.46 HKD
//	Jul-Dec 2000 calls × 0.001425 × 7.80 = 22.23 HKD
//
// The agent workflow: 10 users × 4 tasks × 25 calls (fan-out) = 1000 calls a
// month of 2000 input (500 cache reads, 400 cache writes, 1100 uncached) and
// 300 output (100 reasoning, billed at the output rate) on anthropic/claude-x:
//
//	list 1100×3 + 500×0.3 + 400×3.75 + 300×15 = 9450 per 1e6 = 0.00945 USD
//	contract 10% off: 0.008505 USD; × 1000 calls × 7.80 = 66.339 HKD a month
func TestBuildHandComputed(t *testing.T) {
	r, err := Build(testPlan(t), testEngine(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[Month][2]string{
		1: {"22.23", "66.339"}, 2: {"22.23", "66.339"}, 3: {"22.23", "66.339"},
		4: {"44.46", "66.339"}, 5: {"44.46", "66.339"}, 6: {"44.46", "66.339"},
		7: {"22.23", "66.339"}, 12: {"22.23", "66.339"},
	}
	for m, w := range want {
		eq(t, "support "+m.Label(2026), r.WorkflowMonth("support", m), w[0])
		eq(t, "agent "+m.Label(2026), r.WorkflowMonth("agent", m), w[1])
	}
	eq(t, "total", r.Total(), "1129.518") // 333.45 + 12 × 66.339
	rows := r.ByWorkflowMonth()
	if rows[0].Workflow != "support" || rows[0].Month != 1 {
		t.Fatalf("first row %+v", rows[0])
	}
	eq(t, "support Jan calls", rows[0].Calls, "1000")
	eq(t, "support Jan users", rows[0].Users, "50")
	eq(t, "support Jan outcomes", rows[0].Outcomes, "400") // 500 sessions × 0.8
	eq(t, "support Jan value", rows[0].Value, "4800")      // × HKD 12
	eq(t, "support Jan input tokens", rows[0].Tokens.Input, "1000000")
	eq(t, "support Jan cache reads", rows[0].Tokens.CacheRead, "500000")
	var agentJan *Line
	for i := range r.Lines {
		if r.Lines[i].Workflow == "agent" && r.Lines[i].Month == 1 {
			agentJan = &r.Lines[i]
		}
	}
	if agentJan == nil || agentJan.Rates.ContractID != "acme-anthropic-10" {
		t.Fatalf("agent line without its contract: %+v", agentJan)
	}
	eq(t, "agent Jan USD", agentJan.CostPricing, "8.505")
	eq(t, "agent reasoning rate", agentJan.Rates.Reasoning, "0.0000135") // 15/1e6 × 0.9
}

func TestBuildMissingPlanningFX(t *testing.T) {
	p := testPlan(t)
	p.PlanningFX = nil
	_, err := Build(p, testEngine(t), Options{})
	if err == nil || !strings.Contains(err.Error(), "planning_fx has no rate for USD") {
		t.Fatalf("err = %v", err)
	}
}

func TestBuildUnknownModel(t *testing.T) {
	p := testPlan(t)
	p.Workflows[0].ModelMix["2026-06"] = map[string]pricing.Amount{"openai/nope": amt(one)}
	_, err := Build(p, testEngine(t), Options{})
	if err == nil || !strings.Contains(err.Error(), "unknown_model") || !strings.Contains(err.Error(), "2026-06-01") {
		t.Fatalf("err = %v", err)
	}
}

// A model mix that changes mid-year: from July half of support's calls go
// to openai/small (0.000285 USD a call, by hand: 500×0.2 + 500×0.05 + 200×0.8 per 1e6).
// July: 1000 × 0.001425 + 1000 × 0.000285 = 1.71 USD = 13.338 HKD.
func TestBuildMixByMonth(t *testing.T) {
	p := testPlan(t)
	p.Workflows[0].ModelMix["2026-07"] = map[string]pricing.Amount{"openai/big": amt(d("0.5")), "openai/small": amt(d("0.5"))}
	r, err := Build(p, testEngine(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "support Jun", r.WorkflowMonth("support", 6), "44.46")
	eq(t, "support Jul", r.WorkflowMonth("support", 7), "13.338")
}

func TestBudgetCapAddsDeniedLine(t *testing.T) {
	r, err := Build(testPlan(t), testEngine(t), Options{MonthlyCap: map[string]decimal.Decimal{"support": d("30")}})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "support Apr capped", r.WorkflowMonth("support", 4), "30")
	eq(t, "support Jan under cap", r.WorkflowMonth("support", 1), "22.23")
}

func TestValidateReportsEveryProblemWithItsPath(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "bad_plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(b)
	if err == nil {
		t.Fatal("bad plan accepted")
	}
	var got []string
	for _, e := range configerr.Leaves(err) {
		got = append(got, e.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"tenant: required",
		"year: 1999 is not a plan year",
		`reporting_currency: "hkd" is not an ISO 4217 code`,
		"planning_fx.USD: rate must be > 0",
		"workflows[0].eligible_users: -1 must be >= 0",
		"workflows[0].adoption.2026-01: 2026-01 is outside the plan year 1999",
		"workflows[0].adoption.2026-01: 1.5 must be a share between 0 and 1",
		"workflows[0].tokens_per_call.cache_write: 50 exceeds the uncached input",
		"workflows[0].tokens_per_call.reasoning: 20 exceeds output 10",
		`workflows[0].service_tier: "turbo" is not one of`,
		"workflows[0].model_mix.2026-01.small: must be provider/model",
		"workflows[0].model_mix.2026-01: shares add up to 0.9, not 1",
		`workflows[0].levers[0].kind: "teleport" is not one of`,
		"workflows[0].levers[1].ux: required",
		"workflows[0].levers[1].share: required",
		`workflows[1].name: "a" is planned twice`,
		"workflows[1].adoption: at least one month is required",
		"workflows[1].model_mix: at least one month is required",
		"envelope.quarters.Q2: required with phasing: quarterly",
		"envelope.quarters.Q5: not a quarter",
		"envelope.quarters: add up to 11, not annual 100",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
}

func TestParseRejectsUnknownField(t *testing.T) {
	_, err := Parse([]byte("tenant: acme\nyear: 2026\nreporting_currency: HKD\nworkflowz: []\n"))
	if err == nil || !strings.Contains(err.Error(), "workflowz") {
		t.Fatalf("err = %v", err)
	}
}
