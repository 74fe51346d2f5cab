package loadgen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Path is an ingest path a call travels through to the collector.
type Path string

// The ingest paths the generator exercises.
const (
	// PathHTTPJSON posts canonical UsageEvents to /v1/usage as JSON arrays,
	// NDJSON, CloudEvents batches, single objects, sometimes gzip or zstd.
	PathHTTPJSON Path = "http-json"
	// PathNative posts provider-native usage objects (OpenAI, Anthropic,
	// Gemini, Bedrock) with provider, model and attribution beside them.
	PathNative Path = "http-native"
	// PathOTLPHTTP exports spans with the current GenAI attribute names through
	// the OpenTelemetry SDK's OTLP/HTTP (protobuf) exporter.
	PathOTLPHTTP Path = "otlp-http"
	// PathOTLPGRPC exports spans with the older GenAI attribute names through
	// the OpenTelemetry SDK's OTLP/gRPC exporter.
	PathOTLPGRPC Path = "otlp-grpc"
	// PathKafka produces canonical UsageEvents straight to the usage topic,
	// as a batch job runner that already speaks Kafka would. The processor,
	// not the collector, validates these.
	PathKafka Path = "kafka"
)

// AllPaths lists every usage path in summary order.
var AllPaths = []Path{PathHTTPJSON, PathNative, PathOTLPHTTP, PathOTLPGRPC, PathKafka}

// Deliberately bad calls, sent so the DLQ and the rejection counters have
// something to show. They never count toward the expected totals.
const (
	// BadUnknownModel is a well-formed call to a model no catalogue prices:
	// the collector accepts it and the processor sends it to the DLQ.
	BadUnknownModel = "unknown_model"
	// BadCacheExceedsInput has cache reads larger than input_tokens (which
	// includes them): the collector rejects it.
	BadCacheExceedsInput = "cache_read_exceeds_input"
)

// Native usage shapes, named as the collector's provider-native envelope names them.
const (
	NativeOpenAIChat      = "openai.chat_completions"
	NativeOpenAIResponses = "openai.responses"
	NativeAnthropic       = "anthropic.messages"
	NativeGemini          = "gemini.generate_content"
	NativeBedrock         = "bedrock.converse"
)

// Workflow names as they appear in events and in the summary.
const (
	WorkflowSupport   = "support-copilot"
	WorkflowLegal     = "legal-research"
	WorkflowMarketing = "marketing-copy"
	WorkflowAgent     = "procurement-agent"
)

// Workflows lists the demo workflows in summary order.
var Workflows = []string{WorkflowSupport, WorkflowLegal, WorkflowMarketing, WorkflowAgent}

// Model is a provider/model pair the shipped price catalogue covers.
type Model struct {
	Provider string
	Name     string
}

// Models used by the scenarios. Provider values follow gen_ai.provider.name.
var (
	ModelGPT4o         = Model{"openai", "gpt-4o"}
	ModelGPT4oMini     = Model{"openai", "gpt-4o-mini"}
	ModelO3            = Model{"openai", "o3"}
	ModelO4Mini        = Model{"openai", "o4-mini"}
	ModelSonnet45      = Model{"anthropic", "claude-sonnet-4-5"}
	ModelHaiku45       = Model{"anthropic", "claude-haiku-4-5"}
	ModelGeminiPro     = Model{"gcp.gemini", "gemini-2.5-pro"}
	ModelGeminiFlash   = Model{"gcp.gemini", "gemini-2.5-flash"}
	ModelMistralLarge  = Model{"mistral_ai", "mistral-large-latest"}
	ModelDeepSeekChat  = Model{"deepseek", "deepseek-chat"}
	ModelBedrockClaude = Model{"aws.bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"}
	// ModelUnknown is priced by no catalogue (deliberate DLQ traffic).
	ModelUnknown = Model{"openai", "gpt-imaginary-9"}
)

// Call is one simulated model call and how it is sent.
type Call struct {
	Event event.UsageEvent
	Path  Path
	// Native is the provider-native shape used when Path is PathNative.
	Native string
	// Bad is "" for a good call, else BadUnknownModel or BadCacheExceedsInput.
	Bad string
	// Start is when the call began; Event.EventTime is when it finished.
	Start time.Time
}

// Request is one user request: the model calls it caused (one or many, all
// sharing TraceID when the workflow traces them together) and the business
// outcome it produced, if any.
type Request struct {
	Seq      int64
	Workflow string
	// App is the simulated application (OTel resource service.name).
	App string
	// At is when the request completed; the scheduler sends it then.
	At time.Time
	// Path is the ingest path chosen for the request's calls.
	Path Path
	// TraceID and RootSpanID identify the request's root span when its calls
	// share a trace (RootName != ""); each call then has its own span under it.
	TraceID    string
	RootSpanID string
	RootName   string
	RootStart  time.Time
	Calls      []Call
	Outcome    *event.OutcomeEvent
}

// Planner generates requests deterministically: the same seed, run id, base
// time and rate give the same requests, byte for byte. Content (workflows,
// models, tokens, users) depends on the seed only; identifiers (event ids,
// trace and span ids) also mix in the run id, so a second run does not
// collide with the first unless asked to.
type Planner struct {
	rng     *rand.Rand
	runID   string
	tenant  string
	env     string
	base    time.Time
	perCall time.Duration // virtual time one call advances the clock
	paths   map[Path]bool

	seq    int64
	calls  int64
	badSeq int64
	idSeq  uint64
}

// PlannerConfig holds what a Planner needs.
type PlannerConfig struct {
	Seed        uint64
	RunID       string
	Tenant      string
	Environment string
	Base        time.Time
	Rate        float64 // model calls per second of virtual time; > 0
	// Paths enabled; a request whose path is disabled falls back to http-json,
	// else to the first enabled path. Empty means all.
	Paths []Path
	// BadEvents enables the deliberately bad calls.
	BadEvents bool
}

// NewPlanner builds a planner.
func NewPlanner(c PlannerConfig) *Planner {
	p := &Planner{
		rng:     rand.New(rand.NewPCG(c.Seed, 0x746f6b656e6d6574)), // "tokenmet"
		runID:   c.RunID,
		tenant:  c.Tenant,
		env:     c.Environment,
		base:    c.Base.UTC().Truncate(time.Millisecond),
		perCall: time.Duration(float64(time.Second) / c.Rate),
		paths:   map[Path]bool{},
	}
	if len(c.Paths) == 0 {
		c.Paths = AllPaths
	}
	for _, x := range c.Paths {
		p.paths[x] = true
	}
	if !c.BadEvents {
		p.badSeq = -1
	}
	return p
}

// Calls reports how many model calls have been planned so far.
func (p *Planner) Calls() int64 { return p.calls }

// Next plans the next request. Bad calls come as their own one-call requests:
// the third and fifth requests, then about one request in 400.
func (p *Planner) Next() *Request {
	p.seq++
	var r *Request
	switch {
	case p.badSeq >= 0 && (p.seq == 3 || p.seq == 5 || p.rng.IntN(400) == 0):
		r = p.bad()
	default:
		switch w := p.rng.IntN(100); {
		case w < 35:
			r = p.support()
		case w < 55:
			r = p.legal()
		case w < 80:
			r = p.marketing()
		default:
			r = p.agent()
		}
	}
	p.calls += int64(len(r.Calls))
	r.Seq = p.seq
	r.At = p.base.Add(time.Duration(p.calls) * p.perCall).Truncate(time.Millisecond)
	p.finish(r)
	return r
}

// finish stamps times, ids and shared attribution on a request's calls.
func (p *Planner) finish(r *Request) {
	// Calls run one after another and the last one ends at r.At.
	end := r.At
	for i := len(r.Calls) - 1; i >= 0; i-- {
		c := &r.Calls[i]
		lat := time.Duration(300+p.rng.IntN(2500)) * time.Millisecond
		c.Event.EventTime = end
		c.Start = end.Add(-lat)
		end = c.Start.Add(-time.Duration(20+p.rng.IntN(200)) * time.Millisecond)
	}
	r.RootStart = end
	for i := range r.Calls {
		c := &r.Calls[i]
		e := &c.Event
		e.EventID = p.id("ev", r.Seq, i, 12)
		e.Tenant = p.tenant
		e.Workflow = r.Workflow
		e.Application = r.App
		e.Environment = p.env
		e.Operation = "chat"
		if e.ServiceTier == "" {
			e.ServiceTier = event.ServiceTierStandard
		}
		if r.RootName != "" {
			e.TraceID = r.TraceID
		} else {
			e.TraceID = p.id("tr", r.Seq, i, 16)
		}
		e.SpanID = p.id("sp", r.Seq, i, 8)
		if c.Native == "" {
			c.Native = nativeShape(Model{e.Provider, e.Model})
		}
		if c.Path == "" {
			c.Path = r.Path
		}
	}
	if o := r.Outcome; o != nil {
		o.OutcomeID = p.id("oc", r.Seq, 0, 12)
		o.EventTime = r.At.Add(time.Duration(100+p.rng.IntN(900)) * time.Millisecond)
		o.Tenant = p.tenant
		o.Workflow = r.Workflow
	}
}

// id derives a hex id of n bytes from the run id and the position of the
// thing it names, so ids never depend on the random stream.
func (p *Planner) id(kind string, seq int64, idx, n int) string {
	sum := sha256.Sum256([]byte(p.runID + "/" + kind + "/" + strconv.FormatInt(seq, 10) + "/" + strconv.Itoa(idx)))
	if kind == "ev" || kind == "oc" {
		return "lg-" + p.runID + "-" + kind + "-" + hex.EncodeToString(sum[:n])
	}
	return hex.EncodeToString(sum[:n])
}

func (p *Planner) newTrace(r *Request, rootName string) {
	r.RootName = rootName
	r.TraceID = p.id("rt", p.seq, 0, 16)
	r.RootSpanID = p.id("rs", p.seq, 0, 8)
}

// pickPath draws a path from weights (summing to 100) and falls back when disabled.
func (p *Planner) pickPath(weights ...pathWeight) Path {
	n := p.rng.IntN(100)
	chosen := weights[len(weights)-1].path
	for _, w := range weights {
		if n < w.pct {
			chosen = w.path
			break
		}
		n -= w.pct
	}
	return p.enabled(chosen)
}

func (p *Planner) enabled(x Path) Path {
	if p.paths[x] {
		return x
	}
	if p.paths[PathHTTPJSON] {
		return PathHTTPJSON
	}
	for _, y := range AllPaths {
		if p.paths[y] {
			return y
		}
	}
	return PathHTTPJSON
}

type pathWeight struct {
	path Path
	pct  int
}

// tokens draws a log-normal count around median, clamped to [lo, hi].
func (p *Planner) tokens(median float64, sigma float64, lo, hi int64) int64 {
	v := int64(median * math.Exp(p.rng.NormFloat64()*sigma))
	return max(lo, min(hi, v))
}

func (p *Planner) chance(pct int) bool { return p.rng.IntN(100) < pct }

func (p *Planner) user(prefix string, n int) string {
	return fmt.Sprintf("%s-%03d", prefix, 1+p.rng.IntN(n))
}

func call(m Model) Call {
	return Call{Event: event.UsageEvent{Provider: m.Provider, Model: m.Name}}
}

// support is the customer-support copilot: a conversation of one to three
// turns, each its own trace, sharing a conversation id. A long system prompt
// and knowledge-base excerpt is cached, so most input is cache reads.
func (p *Planner) support() *Request {
	r := &Request{Workflow: WorkflowSupport, App: "support-copilot"}
	r.Path = p.pickPath(pathWeight{PathOTLPHTTP, 55}, pathWeight{PathHTTPJSON, 30}, pathWeight{PathNative, 15})
	conv := "conv-" + p.id("cv", p.seq, 0, 8)
	user := p.user("agent", 25)
	session := "sess-" + p.id("ss", p.seq, 0, 6)
	version := "v3"
	if p.chance(20) {
		version = "v4" // an A/B test of a shorter prompt
	}
	m := ModelGPT4oMini
	if p.chance(30) {
		m = ModelHaiku45
	}
	turns := 1 + p.rng.IntN(3)
	prefix := p.tokens(2600, 0.2, 1200, 6000)
	history := int64(0)
	for t := 0; t < turns; t++ {
		c := call(m)
		e := &c.Event
		msg := p.tokens(180, 0.5, 20, 2000)
		e.InputTokens = prefix + history + msg
		switch {
		case m == ModelHaiku45 && t == 0 && p.chance(35):
			e.CacheWriteInputTokens = prefix // first user of a fresh cache writes it
		case p.chance(85):
			e.CacheReadInputTokens = prefix / 128 * 128 // caches hit in 128-token steps
		}
		e.OutputTokens = p.tokens(260, 0.4, 30, 1500)
		history += msg + e.OutputTokens
		e.PromptTemplate, e.PromptVersion = "support-answer", version
		e.UserID, e.Team, e.ConversationID, e.SessionID = user, "customer-support", conv, session
		r.Calls = append(r.Calls, c)
	}
	if p.chance(65) {
		r.Outcome = &event.OutcomeEvent{OutcomeType: "ticket_resolved", Count: 1,
			Value: &event.Money{Amount: decimal.RequireFromString("45.00"), Currency: "HKD"}, ConversationID: conv}
	}
	return r
}

// legal is legal research: a research call over long documents, optionally
// followed by a summary, under one trace. Reasoning models think at length;
// a few requests carry a whole contract bundle past 200k tokens.
func (p *Planner) legal() *Request {
	r := &Request{Workflow: WorkflowLegal, App: "legal-research"}
	r.Path = p.pickPath(pathWeight{PathOTLPGRPC, 55}, pathWeight{PathHTTPJSON, 30}, pathWeight{PathNative, 15})
	p.newTrace(r, "legal_research.query")
	user := p.user("lawyer", 12)
	tmpl, version := "case-law-search", "v2"
	if p.chance(55) {
		tmpl, version = "contract-review", "v5"
		if p.chance(30) {
			version = "v6"
		}
	}
	var m Model
	switch n := p.rng.IntN(100); {
	case n < 45:
		m = ModelSonnet45
	case n < 75:
		m = ModelGeminiPro
	default:
		m = ModelO3
	}
	c := call(m)
	e := &c.Event
	e.InputTokens = p.tokens(24000, 0.6, 4000, 150000)
	if (m == ModelGeminiPro || m == ModelSonnet45) && p.chance(5) {
		e.InputTokens = p.tokens(280000, 0.2, 205000, 900000) // long context: the whole bundle
	}
	switch {
	case m == ModelSonnet45 && p.chance(40):
		e.CacheReadInputTokens = e.InputTokens * int64(60+p.rng.IntN(35)) / 100
	case m == ModelSonnet45 && p.chance(30):
		e.CacheWriteInputTokens = e.InputTokens * int64(50+p.rng.IntN(40)) / 100
	case m == ModelGeminiPro && p.chance(30):
		e.CacheReadInputTokens = e.InputTokens / 2
	}
	visible := p.tokens(1400, 0.5, 200, 8000)
	switch m {
	case ModelO3:
		e.ReasoningTokens = p.tokens(5000, 0.6, 500, 40000)
	case ModelGeminiPro:
		e.ReasoningTokens = p.tokens(1500, 0.6, 100, 20000)
	}
	e.OutputTokens = visible + e.ReasoningTokens
	r.Calls = append(r.Calls, c)
	if p.chance(40) {
		s := call(ModelHaiku45)
		s.Event.InputTokens = visible + p.tokens(900, 0.3, 200, 4000)
		s.Event.OutputTokens = p.tokens(500, 0.4, 80, 2000)
		r.Calls = append(r.Calls, s)
	}
	for i := range r.Calls {
		e := &r.Calls[i].Event
		e.PromptTemplate, e.PromptVersion, e.UserID, e.Team = tmpl, version, user, "legal"
	}
	if tmpl == "contract-review" && p.chance(80) {
		r.Outcome = &event.OutcomeEvent{OutcomeType: "contract_reviewed", Count: 1,
			Value: &event.Money{Amount: decimal.RequireFromString("180.00"), Currency: "USD"}, TraceID: r.TraceID}
	}
	return r
}

// marketing is marketing copy: one call per draft; overnight campaigns go
// through the providers' batch tiers at half price.
func (p *Planner) marketing() *Request {
	r := &Request{Workflow: WorkflowMarketing, App: "marketing-studio"}
	r.Path = p.pickPath(pathWeight{PathHTTPJSON, 50}, pathWeight{PathNative, 35}, pathWeight{PathOTLPHTTP, 15})
	var m Model
	switch n := p.rng.IntN(100); {
	case n < 35:
		m = ModelGPT4o
	case n < 65:
		m = ModelGeminiFlash
	case n < 80:
		m = ModelMistralLarge
	default:
		m = ModelDeepSeekChat
	}
	c := call(m)
	e := &c.Event
	tmpl, version := "ad-copy", "v1"
	switch n := p.rng.IntN(100); {
	case n < 30:
		version = "v2"
	case n < 55:
		tmpl, version = "blog-draft", "v7"
	}
	e.InputTokens = p.tokens(1400, 0.5, 200, 12000)
	if (m == ModelGPT4o || m == ModelDeepSeekChat) && e.InputTokens >= 1024 && p.chance(40) {
		e.CacheReadInputTokens = 1024 // the brand guide prefix
	}
	visible := p.tokens(650, 0.5, 80, 4000)
	if m == ModelGeminiFlash && p.chance(50) {
		e.ReasoningTokens = p.tokens(600, 0.5, 50, 6000)
	}
	e.OutputTokens = visible + e.ReasoningTokens
	if (m == ModelGPT4o || m == ModelGeminiFlash) && p.chance(25) {
		// Overnight campaigns use the batch tier; the job runner that
		// collects the results writes them to Kafka itself.
		e.ServiceTier = event.ServiceTierBatch
		r.Path = p.enabled(PathKafka)
	}
	e.PromptTemplate, e.PromptVersion = tmpl, version
	e.UserID, e.Team = p.user("marketer", 8), "marketing"
	r.Calls = append(r.Calls, c)
	if p.chance(50) {
		r.Outcome = &event.OutcomeEvent{OutcomeType: "document_drafted", Count: 1,
			Value: &event.Money{Amount: decimal.RequireFromString("120.00"), Currency: "HKD"}}
	}
	return r
}

// agent is the agentic workflow: one user request fans out into a planning
// call, several tool-using steps that re-read a growing, cached context, and a
// final answer, all under one trace and one conversation.
func (p *Planner) agent() *Request {
	r := &Request{Workflow: WorkflowAgent, App: "procurement-agent"}
	r.Path = p.pickPath(pathWeight{PathOTLPHTTP, 40}, pathWeight{PathNative, 30}, pathWeight{PathHTTPJSON, 30})
	p.newTrace(r, "invoke_agent procurement-agent")
	conv := "conv-" + r.TraceID[:16]
	user := p.user("buyer", 15)
	worker := ModelSonnet45
	switch n := p.rng.IntN(100); {
	case n < 25:
		worker = ModelGPT4oMini
	case n < 45:
		worker = ModelGeminiFlash
	case n < 55 && r.Path == PathNative:
		worker = ModelBedrockClaude
	}
	plan := call(ModelO4Mini)
	plan.Event.AgentName = "planner"
	plan.Event.InputTokens = p.tokens(2200, 0.3, 600, 8000)
	plan.Event.ReasoningTokens = p.tokens(1800, 0.5, 200, 12000)
	plan.Event.OutputTokens = plan.Event.ReasoningTokens + p.tokens(400, 0.4, 60, 2000)
	r.Calls = append(r.Calls, plan)
	context := plan.Event.InputTokens + p.tokens(1500, 0.3, 300, 6000)
	steps := 3 + p.rng.IntN(8)
	for s := 0; s < steps; s++ {
		c := call(worker)
		e := &c.Event
		e.AgentName = "researcher"
		toolResult := p.tokens(900, 0.7, 50, 20000)
		e.InputTokens = context + toolResult
		if s > 0 {
			e.CacheReadInputTokens = context // the loop re-sends what it sent last step
		} else if worker == ModelSonnet45 || worker == ModelBedrockClaude {
			e.CacheWriteInputTokens = context
		}
		if worker == ModelGeminiFlash {
			e.ReasoningTokens = p.tokens(300, 0.5, 20, 4000)
		}
		e.OutputTokens = e.ReasoningTokens + p.tokens(220, 0.5, 20, 2000)
		context += toolResult + e.OutputTokens
		r.Calls = append(r.Calls, c)
	}
	final := call(ModelSonnet45)
	final.Event.AgentName = "writer"
	final.Event.InputTokens = p.tokens(3000, 0.4, 500, 20000)
	final.Event.OutputTokens = p.tokens(800, 0.4, 100, 4000)
	r.Calls = append(r.Calls, final)
	for i := range r.Calls {
		e := &r.Calls[i].Event
		e.ConversationID, e.UserID, e.Team = conv, user, "procurement"
		e.PromptTemplate, e.PromptVersion = "procure-"+e.AgentName, "v2"
	}
	if p.chance(70) {
		r.Outcome = &event.OutcomeEvent{OutcomeType: "purchase_order_processed", Count: 1,
			Value:   &event.Money{Amount: decimal.RequireFromString("12.50"), Currency: "USD"},
			TraceID: r.TraceID, ConversationID: conv}
	}
	return r
}

// bad plans one deliberately bad call, alternating the two kinds and the
// paths that can carry them.
func (p *Planner) bad() *Request {
	p.badSeq++
	r := &Request{Workflow: WorkflowMarketing, App: "marketing-studio"}
	var c Call
	if p.badSeq%2 == 1 {
		c = call(ModelUnknown)
		c.Bad = BadUnknownModel
		c.Event.InputTokens, c.Event.OutputTokens = 800, 300
		r.Path = p.enabled(PathHTTPJSON)
	} else {
		r.Workflow, r.App = WorkflowSupport, "support-copilot"
		c = call(ModelGPT4oMini)
		c.Bad = BadCacheExceedsInput
		// 1500 cached of an input of 1000, which must include them.
		c.Event.InputTokens, c.Event.CacheReadInputTokens, c.Event.OutputTokens = 1000, 1500, 200
		// Rotate the paths that can carry it: through Kafka the processor
		// rejects it into the DLQ; over HTTP and OTLP the collector answers.
		r.Path = []Path{PathOTLPHTTP, PathKafka, PathHTTPJSON}[(p.badSeq/2)%3]
		r.Path = p.enabled(r.Path)
	}
	c.Event.PromptTemplate, c.Event.PromptVersion, c.Event.UserID, c.Event.Team = "ad-copy", "v1", "marketer-001", "marketing"
	if r.Workflow == WorkflowSupport {
		c.Event.PromptTemplate, c.Event.PromptVersion, c.Event.UserID, c.Event.Team = "support-answer", "v3", "agent-001", "customer-support"
	}
	r.Calls = []Call{c}
	return r
}

// nativeShape is the provider-native usage object a provider's SDK returns.
func nativeShape(m Model) string {
	switch m.Provider {
	case "anthropic":
		return NativeAnthropic
	case "gcp.gemini":
		return NativeGemini
	case "aws.bedrock":
		return NativeBedrock
	case "openai":
		if m.Name == "o3" || m.Name == "o4-mini" {
			return NativeOpenAIResponses
		}
	}
	return NativeOpenAIChat // Mistral and DeepSeek answer in the OpenAI shape
}
