package loadgen

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

var testBase = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func plan(seed uint64, runID string, n int) []*Request {
	p := NewPlanner(PlannerConfig{Seed: seed, RunID: runID, Tenant: "acme", Environment: "test",
		Base: testBase, Rate: 200, BadEvents: true})
	out := make([]*Request, n)
	for i := range out {
		out[i] = p.Next()
	}
	return out
}

func TestPlannerIsDeterministicPerSeed(t *testing.T) {
	a, _ := json.Marshal(plan(7, "run1", 300))
	b, _ := json.Marshal(plan(7, "run1", 300))
	if string(a) != string(b) {
		t.Fatal("same seed and run id gave different traffic")
	}
	c, _ := json.Marshal(plan(8, "run1", 300))
	if string(a) == string(c) {
		t.Fatal("a different seed gave the same traffic")
	}
	// Another run id keeps the content but changes every identifier.
	x, y := plan(7, "run1", 50), plan(7, "run2", 50)
	for i := range x {
		for j := range x[i].Calls {
			ex, ey := x[i].Calls[j].Event, y[i].Calls[j].Event
			if ex.EventID == ey.EventID || ex.TraceID == ey.TraceID || ex.SpanID == ey.SpanID {
				t.Fatalf("request %d call %d: ids did not change with the run id", i, j)
			}
			ex.EventID, ex.TraceID, ex.SpanID, ex.ConversationID, ex.SessionID = "", "", "", "", ""
			ey.EventID, ey.TraceID, ey.SpanID, ey.ConversationID, ey.SessionID = "", "", "", "", ""
			if !reflect.DeepEqual(ex, ey) {
				t.Fatalf("request %d call %d: content changed with the run id:\n%+v\n%+v", i, j, ex, ey)
			}
		}
	}
}

func TestPlannedEventsAreValidExceptTheDeliberatelyBadOnes(t *testing.T) {
	now := testBase.Add(time.Hour)
	reqs := plan(1, "valid", 3000)
	seen := map[string]bool{}
	ids := map[string]bool{}
	var bad = map[string]int{}
	for _, r := range reqs {
		for i := range r.Calls {
			c := &r.Calls[i]
			e := &c.Event
			if ids[e.EventID] {
				t.Fatalf("event id %s used twice", e.EventID)
			}
			ids[e.EventID] = true
			err := e.Validate(now)
			switch c.Bad {
			case "":
				if err != nil {
					t.Fatalf("request %d (%s) call %d is invalid: %v\n%+v", r.Seq, r.Workflow, i, err, e)
				}
				if ModelUnknown == (Model{e.Provider, e.Model}) {
					t.Fatalf("good call uses the unknown model")
				}
			case BadCacheExceedsInput:
				bad[c.Bad]++
				var ve *event.ValidationError
				if !errors.As(err, &ve) || ve.Problems[0].Field != "cache_read_input_tokens" {
					t.Fatalf("bad call %+v: want a cache_read_input_tokens problem, got %v", e, err)
				}
			case BadUnknownModel:
				bad[c.Bad]++
				if err != nil || e.Model != ModelUnknown.Name {
					t.Fatalf("unknown-model call must be well-formed with the unknown model; got %v, %s", err, e.Model)
				}
			}
			seen["workflow:"+e.Workflow] = true
			seen["path:"+string(c.Path)+":"+e.Workflow] = true
			seen["model:"+e.Provider+"/"+e.Model] = true
			seen["tier:"+e.ServiceTier] = true
			if e.CacheReadInputTokens > 0 {
				seen["cache_read"] = true
			}
			if e.CacheWriteInputTokens > 0 {
				seen["cache_write"] = true
			}
			if e.ReasoningTokens > 0 {
				seen["reasoning"] = true
			}
			if e.InputTokens > 200_000 {
				seen["long_context"] = true
			}
			if e.Team == "" || e.UserID == "" || e.PromptTemplate == "" || e.PromptVersion == "" || e.Application == "" {
				t.Fatalf("call without attribution: %+v", e)
			}
			if e.EventTime.After(r.At) || e.EventTime.Before(testBase.Add(-time.Minute)) {
				t.Fatalf("event time %s outside the request's window (ends %s)", e.EventTime, r.At)
			}
		}
		if o := r.Outcome; o != nil {
			if err := o.Validate(now); err != nil {
				t.Fatalf("outcome of request %d invalid: %v", r.Seq, err)
			}
			seen["outcome:"+o.OutcomeType+":"+o.Value.Currency] = true
			if o.TraceID != "" && o.TraceID != r.TraceID {
				t.Fatalf("outcome names trace %s, request's trace is %s", o.TraceID, r.TraceID)
			}
		}
	}
	for _, want := range []string{
		"workflow:" + WorkflowSupport, "workflow:" + WorkflowLegal, "workflow:" + WorkflowMarketing, "workflow:" + WorkflowAgent,
		// Every workflow sends part of its traffic as canonical JSON, the most dependable path.
		"path:http-json:" + WorkflowSupport, "path:http-json:" + WorkflowLegal, "path:http-json:" + WorkflowMarketing, "path:http-json:" + WorkflowAgent,
		"path:http-native:" + WorkflowAgent, "path:otlp-http:" + WorkflowSupport, "path:otlp-grpc:" + WorkflowLegal,
		"model:openai/gpt-4o", "model:openai/gpt-4o-mini", "model:openai/o3", "model:openai/o4-mini",
		"model:anthropic/claude-sonnet-4-5", "model:anthropic/claude-haiku-4-5",
		"model:gcp.gemini/gemini-2.5-pro", "model:gcp.gemini/gemini-2.5-flash",
		"model:mistral_ai/mistral-large-latest", "model:deepseek/deepseek-chat",
		"tier:standard", "tier:batch", "cache_read", "cache_write", "reasoning", "long_context",
		"outcome:ticket_resolved:HKD", "outcome:contract_reviewed:USD", "outcome:document_drafted:HKD", "outcome:purchase_order_processed:USD",
	} {
		if !seen[want] {
			t.Errorf("3000 requests never produced %s", want)
		}
	}
	// Requests 3 and 5 are bad, then about one in 400: a few, never many.
	if bad[BadUnknownModel] < 1 || bad[BadCacheExceedsInput] < 1 || bad[BadUnknownModel]+bad[BadCacheExceedsInput] > 30 {
		t.Errorf("bad calls: %v; want a few of each kind", bad)
	}
}

func TestAgenticRequestFansOutUnderOneTrace(t *testing.T) {
	n := 0
	for _, r := range plan(3, "agent", 500) {
		if r.Workflow != WorkflowAgent {
			continue
		}
		n++
		// planner + 3..10 steps + writer
		if len(r.Calls) < 5 || len(r.Calls) > 12 {
			t.Fatalf("agent request has %d calls, want 5..12", len(r.Calls))
		}
		if len(r.TraceID) != 32 || len(r.RootSpanID) != 16 || r.RootName == "" {
			t.Fatalf("agent request without a root span: %+v", r)
		}
		spans := map[string]bool{r.RootSpanID: true}
		conv := r.Calls[0].Event.ConversationID
		for _, c := range r.Calls {
			if c.Event.TraceID != r.TraceID || c.Event.ConversationID != conv || conv == "" {
				t.Fatalf("call %s: trace %s conversation %s, want %s and %s", c.Event.EventID, c.Event.TraceID, c.Event.ConversationID, r.TraceID, conv)
			}
			if spans[c.Event.SpanID] {
				t.Fatalf("span id %s used twice in one trace", c.Event.SpanID)
			}
			spans[c.Event.SpanID] = true
			if c.Path != r.Path {
				t.Fatalf("one agent request split across paths %s and %s", c.Path, r.Path)
			}
		}
		if o := r.Outcome; o != nil && (o.TraceID != r.TraceID || o.ConversationID != conv) {
			t.Fatalf("outcome not tied to its trace: %+v", o)
		}
	}
	if n < 50 {
		t.Fatalf("only %d agent requests in 500", n)
	}
}

func TestDisabledPathsFallBackToHTTPJSON(t *testing.T) {
	p := NewPlanner(PlannerConfig{Seed: 1, RunID: "x", Tenant: "acme", Base: testBase, Rate: 100,
		Paths: []Path{PathHTTPJSON, PathNative}, BadEvents: true})
	for i := 0; i < 500; i++ {
		r := p.Next()
		for _, c := range r.Calls {
			if c.Path != PathHTTPJSON && c.Path != PathNative {
				t.Fatalf("request %d uses disabled path %s", r.Seq, c.Path)
			}
		}
	}
}

func TestPacingFollowsTheRate(t *testing.T) {
	// At 200 calls/s each call advances virtual time by 5ms: a request
	// completes at base + 5ms × (calls planned so far, its own included).
	p := NewPlanner(PlannerConfig{Seed: 9, RunID: "x", Tenant: "acme", Base: testBase, Rate: 200})
	var calls int
	for i := 0; i < 100; i++ {
		r := p.Next()
		calls += len(r.Calls)
		if want := testBase.Add(time.Duration(calls) * 5 * time.Millisecond); !r.At.Equal(want) {
			t.Fatalf("request %d at %s, want %s", r.Seq, r.At, want)
		}
	}
}
