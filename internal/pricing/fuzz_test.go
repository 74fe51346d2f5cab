package pricing

import (
	"bytes"
	"os"
	"sync"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// FuzzParseCatalogue: arbitrary catalogue bytes never panic the parser or the
// index builder, and whatever loads prices without panicking.
func FuzzParseCatalogue(f *testing.F) {
	for _, p := range []string{"testdata/catalogue.yaml", "testdata/bad_catalogue.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("models: [{provider: a, model: b, valid_from: 2026-01-01, prices: {standard: {input: 1e400, output: -0}}}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCatalogue(b, "fuzz.yaml")
		if err != nil {
			return
		}
		Check([]*CatalogueFile{c}, nil, at("2026-06-01T00:00:00Z"))
		e, err := New([]*CatalogueFile{c}, nil, nil, nil)
		if err != nil {
			return
		}
		for _, m := range e.Models() {
			ev := event.UsageEvent{Provider: m[0], Model: m[1], EventTime: at("2026-06-01T00:00:00Z"), InputTokens: 1 << 40, OutputTokens: 7, CacheReadInputTokens: 3}
			var out event.PricedUsageEvent
			if e.Price(&ev, "", &out) == nil {
				checkSum(t, &out)
			}
		}
	})
}

// FuzzImportLiteLLM: arbitrary JSON never panics the importer.
func FuzzImportLiteLLM(f *testing.F) {
	b, err := os.ReadFile("testdata/litellm_sample.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"m": {"litellm_provider": "openai", "input_cost_per_token": 1e-999999, "output_cost_per_token": "x"}}`))
	f.Add([]byte(`{"m": {"litellm_provider": "openai", "input_cost_per_token": 1, "output_cost_per_token": 2, "input_cost_per_token_above_1k_tokens": 3, "output_cost_per_token_above_2k_tokens": 4}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ImportLiteLLM(bytes.NewReader(b), LiteLLMOptions{ValidFrom: "2026-01-01"})
	})
}

// Price is safe for concurrent use, including the pattern cache (run with -race).
func TestPriceConcurrent(t *testing.T) {
	e := testEngine(t)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				models := []string{"gpt-4o-2024-08-06", "gpt-4o-2024-11-20", "gpt-4o-2099-01-01", "gpt-4o-nope"}
				ev := event.UsageEvent{Tenant: "beta", Provider: "openai", Model: models[(g+i)%len(models)], EventTime: at("2026-06-01T00:00:00Z"), InputTokens: 1000, OutputTokens: 1000}
				var out event.PricedUsageEvent
				err := e.Price(&ev, "", &out)
				if (ev.Model == "gpt-4o-nope") != (err != nil) {
					t.Errorf("%s: %v", ev.Model, err)
					return
				}
				if err == nil && out.EffectiveCost.String() != "0.0125" { // 1000 × 2.50/M + 1000 × 10/M
					t.Errorf("%s: %s", ev.Model, out.EffectiveCost)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

// FX rate files are CSV written by hand or exported from a treasury system.
func FuzzParseFXCSV(f *testing.F) {
	f.Add([]byte("date,base,quote,rate,source\n2026-11-01,USD,HKD,7.7812,HKMA\n"))
	f.Add([]byte("date,base,quote,rate\n2026-11-01,USD,HKD,1e400\n2026-13-01,USD,HKD,-1\n\"unterminated\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseFXCSV(bytes.NewReader(b), "fuzz.csv")
	})
}
