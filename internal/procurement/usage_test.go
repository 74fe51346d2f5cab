package procurement

import (
	"bytes"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

func TestUsageCSVAndScale(t *testing.T) {
	in := "period,tenant,provider,model,tier,long_context,requests,input_tokens,cache_read_input_tokens,cache_write_input_tokens,cache_write_1h_input_tokens,output_tokens,reasoning_tokens\n" +
		"2026-11,acme,openai,gpt-4o,standard,false,3,1001,500,101,1,301,100\n"
	us, err := ReadUsageCSV(strings.NewReader(in))
	if err != nil || len(us) != 1 {
		t.Fatalf("%v %+v", err, us)
	}
	// Half of each disjoint class, rounded down: uncached 400→200, read 250,
	// write-5m 100→50, write-1h 1→0, non-reasoning 201→100, reasoning 50.
	h := us[0].Scale(1, 2)
	if h.InputTokens != 500 || h.CacheReadInputTokens != 250 || h.CacheWriteInputTokens != 50 || h.CacheWrite1hInputTokens != 0 ||
		h.OutputTokens != 150 || h.ReasoningTokens != 50 || h.Requests != 1 {
		t.Fatalf("scaled %+v", h)
	}
	if _, err := ReadUsageCSV(strings.NewReader(strings.Replace(in, ",3,", ",-3,", 1))); err == nil || !strings.Contains(err.Error(), "line 2: requests") {
		t.Errorf("negative count: %v", err)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	vs := []decimal.Decimal{decimal.NewFromInt(30), decimal.NewFromInt(10), decimal.NewFromInt(20), decimal.NewFromInt(40)}
	// n = 4: P10 rank 1 → 10, P50 rank 2 → 20, P90 rank 4 → 40.
	for p, want := range map[int]int64{10: 10, 50: 20, 90: 40} {
		if got := Percentile(vs, p); !got.Equal(decimal.NewFromInt(want)) {
			t.Errorf("P%d = %s, want %d", p, got, want)
		}
	}
}

func FuzzReadUsageCSV(f *testing.F) {
	f.Add([]byte(strings.Join(UsageColumns(), ",") + "\n2026-11,a,p,m,standard,true,1,2,1,0,0,1,0\n"))
	f.Add([]byte("period\n\"x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		us, err := ReadUsageCSV(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, u := range us {
			if u.InputTokens < 0 || u.OutputTokens < 0 {
				t.Fatalf("negative counts accepted: %+v", u)
			}
		}
		_ = ReadCSV(bytes.NewReader(b), "fuzz", []string{"period"}, func(r Record) { _ = r.Dec("period"); _ = r.Int("tenant") })
	})
}
