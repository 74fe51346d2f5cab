package loadgen

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/ingest"
)

// fakeCollector decodes requests with the collector's own ingest code and
// answers like the collector: 202 with rejected items listed by index.
type fakeCollector struct {
	t     *testing.T
	token string

	mu            sync.Mutex
	usage         map[string]*Totals // accepted, by workflow
	outcomes      int
	rejected      map[string]int // by first problem field
	contentTypes  map[string]int
	encodings     map[string]int
	requests      int
	busyFirst     bool // answer the first usage request 503 Retry-After: 0
	sawBusy       bool
	badAuth       int
	nativeSeen    map[string]int // shape detected from usage keys
	eventsByTrace map[string]int
}

func newFakeCollector(t *testing.T, token string) *fakeCollector {
	return &fakeCollector{t: t, token: token, usage: map[string]*Totals{}, rejected: map[string]int{},
		contentTypes: map[string]int{}, encodings: map[string]int{}, nativeSeen: map[string]int{}, eventsByTrace: map[string]int{}}
}

func (f *fakeCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/healthz" {
		return
	}
	f.requests++
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		f.badAuth++
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	if f.busyFirst && !f.sawBusy && r.URL.Path == "/v1/usage" {
		f.sawBusy = true
		w.Header().Set("Retry-After", "0")
		http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
		return
	}
	var body io.Reader = r.Body
	enc := r.Header.Get("Content-Encoding")
	f.encodings[enc]++
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			f.t.Errorf("gzip body: %v", err)
			return
		}
		body = zr
	case "zstd":
		zr, err := zstd.NewReader(r.Body)
		if err != nil {
			f.t.Errorf("zstd body: %v", err)
			return
		}
		defer zr.Close()
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		f.t.Errorf("read body: %v", err)
		return
	}
	ct := r.Header.Get("Content-Type")
	f.contentTypes[ct]++
	format, err := ingest.FormatFor(ct)
	if err != nil {
		f.t.Errorf("content type %q: %v", ct, err)
		return
	}
	items, err := ingest.SplitBody(format, raw, 0)
	if err != nil {
		f.t.Errorf("body (%s, %s): %v", ct, enc, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	type rej struct {
		Index    int                `json:"index"`
		Reason   string             `json:"reason"`
		Problems []event.FieldError `json:"problems"`
	}
	var rejected []rej
	opts := ingest.Options{Now: time.Now(), Tenant: "acme"}
	for i, it := range items {
		var err error
		switch r.URL.Path {
		case "/v1/usage":
			var ev event.UsageEvent
			if err = ingest.DecodeUsageItem(it, opts, &ev); err == nil {
				tot := f.usage[ev.Workflow]
				if tot == nil {
					tot = &Totals{}
					f.usage[ev.Workflow] = tot
				}
				tot.Add(&ev)
				f.eventsByTrace[ev.TraceID]++
				var keys map[string]json.RawMessage
				if json.Unmarshal(it.Raw, &keys) == nil {
					for _, k := range []string{"usage", "usageMetadata"} {
						if u, ok := keys[k]; ok {
							f.nativeSeen[shapeOf(u)]++
						}
					}
				}
			}
		case "/v1/outcomes":
			var o event.OutcomeEvent
			if err = ingest.DecodeOutcomeItem(it, opts, &o); err == nil {
				f.outcomes++
			}
		default:
			http.NotFound(w, r)
			return
		}
		var ie *ingest.ItemError
		if errors.As(err, &ie) {
			rejected = append(rejected, rej{Index: i, Reason: ie.Reason, Problems: ie.Problems})
			f.rejected[ie.Problems[0].Field]++
		} else if err != nil {
			f.t.Errorf("item %d: %v", i, err)
		}
	}
	// The collector's answer: 202, or 400 when no item was valid, listing rejections by index.
	code := http.StatusAccepted
	if len(rejected) == len(items) {
		code = http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"accepted": len(items) - len(rejected), "rejected": len(rejected), "errors": rejected})
}

func shapeOf(u json.RawMessage) string {
	s := string(u)
	switch {
	case strings.Contains(s, `"prompt_tokens"`):
		return NativeOpenAIChat
	case strings.Contains(s, `"cache_creation_input_tokens"`):
		return NativeAnthropic
	case strings.Contains(s, `"input_tokens_details"`):
		return NativeOpenAIResponses
	case strings.Contains(s, `"promptTokenCount"`):
		return NativeGemini
	case strings.Contains(s, `"inputTokens"`):
		return NativeBedrock
	}
	return "unknown"
}

func TestRunSendsEveryHTTPShapeWithAuthAndCountsVerdicts(t *testing.T) {
	fc := newFakeCollector(t, "tok-1")
	fc.busyFirst = true
	srv := httptest.NewServer(fc)
	defer srv.Close()

	// 3000 calls/s for 1s; batches of 40 so every body encoding comes round.
	sum, err := Run(context.Background(), Config{
		Target: srv.URL, Token: "tok-1", Tenant: "acme", Rate: 3000, Duration: time.Second,
		Seed: 5, RunID: "httptest", BatchSize: 40, Paths: []Path{PathHTTPJSON, PathNative},
	})
	if err != nil {
		t.Fatal(err)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.badAuth != 0 {
		t.Fatalf("%d requests without the bearer token", fc.badAuth)
	}
	if !fc.sawBusy || sum.Paths[PathHTTPJSON].Retries+sum.Paths[PathNative].Retries < 1 {
		t.Fatalf("the 503 was not retried: %+v", sum.Paths)
	}
	// What the collector accepted, decoded independently, is what the
	// summary says the pipeline should meter, workflow by workflow.
	for _, wf := range Workflows {
		got, want := fc.usage[wf], sum.Expected[wf]
		if got == nil || want.Calls == 0 {
			t.Fatalf("workflow %s: nothing sent (collector %+v, summary %+v)", wf, got, want)
		}
		// The unknown-model calls are valid at ingest but are no part of the expected totals.
		if wf == WorkflowMarketing {
			b := sum.Bad[BadUnknownModel]
			got.Calls -= b.AcceptedAtIngest
			got.InputTokens -= 800 * b.AcceptedAtIngest // each is 800 in, 300 out
			got.OutputTokens -= 300 * b.AcceptedAtIngest
		}
		if *got != *want {
			t.Errorf("workflow %s: collector decoded %+v, summary expects %+v", wf, *got, *want)
		}
	}
	b := sum.Bad[BadCacheExceedsInput]
	if b == nil || b.Sent == 0 || b.RejectedAtIngest != b.Sent || int64(fc.rejected["cache_read_input_tokens"]) != b.Sent {
		t.Fatalf("cache-exceeds-input calls: summary %+v, collector rejected %v", b, fc.rejected)
	}
	if u := sum.Bad[BadUnknownModel]; u == nil || u.AcceptedAtIngest == 0 {
		t.Fatalf("unknown-model calls: %+v", u)
	}
	for _, ct := range []string{"application/json", "application/x-ndjson", "application/cloudevents-batch+json"} {
		if fc.contentTypes[ct] == 0 {
			t.Errorf("no request with Content-Type %s (saw %v)", ct, fc.contentTypes)
		}
	}
	for _, enc := range []string{"", "gzip", "zstd"} {
		if fc.encodings[enc] == 0 {
			t.Errorf("no request with Content-Encoding %q (saw %v)", enc, fc.encodings)
		}
	}
	for _, shape := range []string{NativeOpenAIChat, NativeOpenAIResponses, NativeAnthropic, NativeGemini} {
		if fc.nativeSeen[shape] == 0 {
			t.Errorf("no provider-native %s object (saw %v)", shape, fc.nativeSeen)
		}
	}
	if fc.outcomes == 0 || int64(fc.outcomes) != sum.Outcomes.Accepted {
		t.Errorf("outcomes: collector decoded %d, summary accepted %d", fc.outcomes, sum.Outcomes.Accepted)
	}
	if sum.GoodFailed() != 0 {
		t.Errorf("%d good items not accepted", sum.GoodFailed())
	}
	var out strings.Builder
	sum.Print(&out)
	for _, want := range []string{"http-json", "http-native", "cache_read_exceeds_input", "procurement-agent", "ticket_resolved"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunFailsAtOnceWhenTargetIsUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	_, err := Run(context.Background(), Config{Target: url, Duration: time.Second, Paths: []Path{PathHTTPJSON}})
	if err == nil || !strings.Contains(err.Error(), "unreachable") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("want a one-line unreachable error, got %v", err)
	}
}

func TestItemVerdicts(t *testing.T) {
	reply := []byte(`{"accepted":2,"rejected":1,"errors":[{"index":1,"reason":"invalid_field","problems":[{"field":"cache_read_input_tokens","reason":"x"}]}]}`)
	v := itemVerdicts(answer{status: 202, body: reply}, 3)
	if !v[0].accepted || v[1].accepted || v[1].reason != "invalid_field (cache_read_input_tokens)" || !v[2].accepted {
		t.Fatalf("202 with one rejected: %+v", v)
	}
	v = itemVerdicts(answer{status: 400, body: []byte(`{"accepted":0,"rejected":1,"errors":[{"index":0,"reason":"invalid_json"}]}`)}, 1)
	if v[0].accepted || v[0].failed || v[0].reason != "invalid_json" {
		t.Fatalf("400 listing the only item: %+v", v)
	}
	v = itemVerdicts(answer{status: 401, body: []byte(`{"error":"unauthenticated","message":"missing or unknown bearer token"}`)}, 2)
	if v[0].accepted || v[0].failed || v[0].reason != "HTTP 401 unauthenticated" {
		t.Fatalf("401: %+v", v)
	}
	v = itemVerdicts(answer{status: 0}, 2)
	if !v[0].failed || !v[1].failed {
		t.Fatalf("no answer: %+v", v)
	}
}

func TestRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{"3": 3 * time.Second, "0": 0, "120": 30 * time.Second} {
		if d, ok := retryAfter(in); !ok || d != want {
			t.Errorf("Retry-After %q: got %s %v, want %s", in, d, ok, want)
		}
	}
	if _, ok := retryAfter("soon"); ok {
		t.Error("Retry-After soon parsed")
	}
}

func TestUnreachableOTLPIsReroutedAndSpendIsPriced(t *testing.T) {
	fc := newFakeCollector(t, "tok-4")
	srv := httptest.NewServer(fc)
	defer srv.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := strings.TrimPrefix(dead.URL, "http://")
	dead.Close()

	micro := decimal.New(1, -6)
	sum, err := Run(context.Background(), Config{
		Target: srv.URL, OTLPHTTP: deadAddr, Token: "tok-4", Tenant: "acme", Rate: 2000, Duration: 500 * time.Millisecond,
		RunID: "reroute", Paths: []Path{PathHTTPJSON, PathOTLPHTTP}, NoBadEvents: true,
		// One micro-HKD per input token, so the expected spend is input/1e6.
		Price: func(ev *event.UsageEvent) (decimal.Decimal, string, error) {
			return micro.Mul(decimal.NewFromInt(ev.InputTokens)), "HKD", nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], "otlp-http receiver") {
		t.Fatalf("warnings %q", sum.Warnings)
	}
	if _, ok := sum.Paths[PathOTLPHTTP]; ok {
		t.Fatal("the unreachable path is still in the summary")
	}
	if sum.GoodFailed() != 0 {
		t.Fatalf("%d good items lost", sum.GoodFailed())
	}
	for _, wf := range Workflows {
		e := sum.Expected[wf]
		if e.Calls == 0 {
			t.Errorf("workflow %s has no traffic once otlp-http is gone", wf)
		}
		if want := decimal.New(e.InputTokens, -6); !sum.ExpectedSpend[wf].Equal(want) || sum.SpendCurrency != "HKD" {
			t.Errorf("workflow %s: spend %s %s, want HKD %s", wf, sum.SpendCurrency, sum.ExpectedSpend[wf], want)
		}
	}
}
