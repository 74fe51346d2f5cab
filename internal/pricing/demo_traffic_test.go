package pricing_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/loadgen"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// The demo's traffic is priced by the shipped catalogue, contracts and FX with
// no refusal except the load generator's deliberate bad calls: the unknown
// model (unknown_model) and cache reads above input (invalid_usage).
func TestShippedFilesPriceDemoTraffic(t *testing.T) {
	e, err := pricing.Load(pricing.Config{
		Catalogues: []string{"prices/catalogue.yaml"}, Contracts: "prices/contracts.yaml", FX: "prices/fx.csv",
	}, func(p string) string { return "../../pipelines/" + p })
	if err != nil {
		t.Fatal(err)
	}
	p := loadgen.NewPlanner(loadgen.PlannerConfig{Seed: 7, RunID: "t", Tenant: "acme", Environment: "demo",
		Base: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC), Rate: 50, BadEvents: true})
	priced, bad := 0, map[string]int{}
	for i := 0; i < 3000; i++ {
		r := p.Next()
		for _, c := range r.Calls {
			ev := c.Event
			var out event.PricedUsageEvent
			err := e.Price(&ev, "HKD", &out)
			var pe *pricing.Error
			switch {
			case err == nil && c.Bad == "":
				priced++
				if out.BilledEffectiveCost.Sign() <= 0 {
					t.Errorf("%s/%s priced at %s HKD", ev.Provider, ev.Model, out.BilledEffectiveCost)
				}
			case err != nil && c.Bad != "" && errors.As(err, &pe):
				bad[c.Bad+" -> "+pe.Reason]++
			default:
				t.Errorf("call %s/%s bad=%q: %v", ev.Provider, ev.Model, c.Bad, err)
			}
		}
	}
	t.Logf("priced %d calls; deliberate refusals %v", priced, bad)
	if priced == 0 || bad[loadgen.BadUnknownModel+" -> "+pricing.ReasonUnknownModel] == 0 || bad[loadgen.BadCacheExceedsInput+" -> "+pricing.ReasonInvalidUsage] == 0 {
		t.Errorf("expected priced calls and both kinds of deliberate refusal, got %d and %v", priced, bad)
	}
}
