package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/shopspring/decimal"
)

// TestUpstreamErrorReleasesAndDisconnectCharges: a provider error costs
// nothing and frees the reservation; a client leaving mid-stream is charged
// the input bound plus what was streamed, never left reserved.
func TestUpstreamErrorReleasesAndDisconnectCharges(t *testing.T) {
	p := startPipeline(t, pipelineOpts{})
	p.provider.FailWith = http.StatusInternalServerError
	resp, b := p.post(t, "/v1/chat/completions", acmeKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"max_tokens":5}`, nil)
	if resp.StatusCode != 500 || !strings.Contains(string(b), "fake provider failure") {
		t.Fatalf("upstream error not relayed: %d %s", resp.StatusCode, b)
	}
	if s := p.budget(t, "acme-legal"); s.Reservations != 0 || !s.Spent.IsZero() {
		t.Fatalf("after an upstream error: %+v, want nothing held or spent", s)
	}

	p.provider.FailWith = 0
	p.provider.StallAfter = 3
	body := `{"model":"gpt-4o-mini","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"long answer"}]}`
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+p.gw+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+acmeKey)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// Read the three deltas, then hang up.
	buf := make([]byte, 4096)
	got := ""
	for strings.Count(got, "data: ") < 3 {
		n, err := r.Body.Read(buf)
		got += string(buf[:n])
		if err != nil {
			t.Fatalf("stream ended early: %v (%q)", err, got)
		}
	}
	cancel()
	r.Body.Close()
	s := p.waitEvents(t, "acme-legal", 1)
	// Input bound = the client's body bytes (bytes_per_token 1), output =
	// the 3 deltas streamed.
	in := int64(len(body)) // the estimate is taken on the client's body
	want := hkd(gpt4oMiniIn, gpt4oMiniOut, in, 3)
	if !s.Spent.Equal(want) || s.Reservations != 0 {
		t.Errorf("after a disconnect: spent %s (want %s = %d input + 3 output tokens), %d reservations", s.Spent, want, in, s.Reservations)
	}
}

// TestPerUserAndPerKeyBudgets: a user's budget denies that user only; a
// key's token budget counts the calls made with that key.
func TestPerUserAndPerKeyBudgets(t *testing.T) {
	p := startPipeline(t, pipelineOpts{})
	call := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"q"}],"max_tokens":4}`
	resp, b := p.post(t, "/v1/chat/completions", acmeKey, call, map[string]string{"X-Tokenmeter-User": "u-7"})
	if resp.StatusCode != 429 || !strings.Contains(string(b), "acme-user-u7") || !strings.Contains(string(b), `"code":"budget_exceeded"`) {
		t.Fatalf("u-7: %d %s, want a 429 naming acme-user-u7", resp.StatusCode, b)
	}
	if resp, b := p.post(t, "/v1/chat/completions", acmeKey, call, map[string]string{"X-Tokenmeter-User": "u-8"}); resp.StatusCode != 200 {
		t.Fatalf("u-8: %d %s", resp.StatusCode, b)
	}
	// The marketing key: workflow fixed by the key; a header cannot move it.
	if resp, b := p.post(t, "/v1/chat/completions", acmeMarketingKey, call, map[string]string{"X-Tokenmeter-Workflow": "legal-research"}); resp.StatusCode != 200 {
		t.Fatalf("marketing: %d %s", resp.StatusCode, b)
	}
	s := p.waitEvents(t, "acme-marketing-key", 1)
	billed := p.provider.Billed()
	last := billed[len(billed)-1]
	if want := decimal.NewFromInt(last.InputTokens + last.OutputTokens); !s.Spent.Equal(want) {
		t.Errorf("key budget spent %s tokens, provider billed %s", s.Spent, want)
	}
	if l := p.waitEvents(t, "acme-legal", 1); l.Events != 1 {
		t.Errorf("legal-research counted %d events, want only u-8's call", l.Events)
	}
}

// TestConcurrentCallersStayWithinBudget hammers an enforced budget through
// the gateway with many concurrent callers, several rounds, and checks the
// stated bound: admitted spend ≤ amount (+ Σ (actual − estimate)⁺, which is
// zero here because every call sets max_tokens and the input estimate is an
// upper bound), and that the budget was actually exhausted (calls denied).
func TestConcurrentCallersStayWithinBudget(t *testing.T) {
	for round := 0; round < 3; round++ {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			amount := decimal.RequireFromString("0.02")
			p := startPipeline(t, pipelineOpts{legalAmount: amount.String()})
			body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Draft a short memo on clause 7 of the lease."}],"max_tokens":24}`
			var wg sync.WaitGroup
			var mu sync.Mutex
			allowed, denied := 0, 0
			for w := 0; w < 16; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 20; i++ {
						req, _ := http.NewRequest("POST", "http://"+p.gw+"/v1/chat/completions", strings.NewReader(body))
						req.Header.Set("Authorization", "Bearer "+acmeKey)
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							t.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						mu.Lock()
						if resp.StatusCode == 200 {
							allowed++
						} else if resp.StatusCode == 429 {
							denied++
						} else {
							t.Errorf("status %d", resp.StatusCode)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			s := p.waitEvents(t, "acme-legal", int64(allowed))
			billed := decimal.Zero
			for _, b := range p.provider.Billed() {
				billed = billed.Add(hkd(gpt4oMiniIn, gpt4oMiniOut, b.InputTokens, b.OutputTokens))
			}
			t.Logf("allowed %d, denied %d, spent %s of %s HKD (provider billed %s)", allowed, denied, s.Spent, amount, billed)
			if s.Spent.GreaterThan(amount) || billed.GreaterThan(amount) {
				t.Errorf("overshoot: spent %s, billed %s > budget %s", s.Spent, billed, amount)
			}
			if denied == 0 || allowed == 0 {
				t.Errorf("allowed %d denied %d: the budget was not exercised", allowed, denied)
			}
			if !s.Spent.Equal(billed) {
				t.Errorf("spent %s != billed %s", s.Spent, billed)
			}
		})
	}
}

// TestOvershootBoundWithoutOutputCap: calls that set no max_tokens are
// estimated at default_max_output_tokens (8 here) but the provider answers
// 24 tokens, so each admitted call costs 16 output tokens more than its
// estimate (bytes_per_token 4 makes the input estimate the fake
// provider's own count, so the output error is not absorbed). The stated bound: spend ≤ amount + (calls in flight when the
// last call was admitted) × the largest single error; with c concurrent
// callers that is ≤ amount + c × 16 tokens' price. Both the sequential case
// (c = 1) and 8 concurrent callers, three rounds each.
func TestOvershootBoundWithoutOutputCap(t *testing.T) {
	amount := decimal.RequireFromString("0.01")
	// One call's error: 16 gpt-4o-mini output tokens, 0.60 USD per million, 7.8 HKD per USD.
	maxErr := hkd(decimal.Zero, gpt4oMiniOut, 0, 16)
	for _, callers := range []int{1, 8} {
		for round := 0; round < 3; round++ {
			t.Run(fmt.Sprintf("callers%d/round%d", callers, round), func(t *testing.T) {
				p := startPipeline(t, pipelineOpts{legalAmount: amount.String(), gatewayYAML: "  default_max_output_tokens: 8\n  bytes_per_token: 4", providerOutput: 24})
				body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Draft a short memo on clause 7."}]}`
				var wg sync.WaitGroup
				var mu sync.Mutex
				allowed, denied := 0, 0
				for w := 0; w < callers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < 200/callers; i++ {
							req, _ := http.NewRequest("POST", "http://"+p.gw+"/v1/chat/completions", strings.NewReader(body))
							req.Header.Set("Authorization", "Bearer "+acmeKey)
							resp, err := http.DefaultClient.Do(req)
							if err != nil {
								t.Error(err)
								return
							}
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							mu.Lock()
							if resp.StatusCode == 200 {
								allowed++
							} else {
								denied++
							}
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				s := p.waitEvents(t, "acme-legal", int64(allowed))
				bound := amount.Add(maxErr.Mul(decimal.NewFromInt(int64(callers))))
				t.Logf("allowed %d, denied %d: spent %s, amount %s, bound %s", allowed, denied, s.Spent, amount, bound)
				if s.Spent.GreaterThan(bound) {
					t.Errorf("spent %s above the bound %s", s.Spent, bound)
				}
				if denied == 0 {
					t.Error("the budget was never exhausted")
				}
			})
		}
	}
}
