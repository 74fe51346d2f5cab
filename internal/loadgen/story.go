package loadgen

import (
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// The story is the demo's history (`loadgen --story`, docs/loadgen.md): a
// few months of a tenant's AI use, played with past event times through the
// real pipeline so a quarter's board pack has something to say. Per day, in
// business hours of Hong Kong (01:00-10:00 UTC), weekends at a third:
//
//   - support-copilot on openai/gpt-5.4: a conversation of 3-5 turns over a
//     cached 5,000-token knowledge prefix; 65% end in a resolved ticket worth
//     HKD 12 of agent time. About HKD 0.40 per resolved ticket. From October
//     prompt v4 trims the prefix to 3,500 tokens (cost per ticket falls
//     quarter on quarter).
//   - legal-research on anthropic/claude-opus-4-1: one query fans out into
//     5 calls over ~180,000 tokens of case law each; about HKD 90 a query, and
//     a research memo worth HKD 30: low value. Three of its calls are simple
//     retrieval and summary steps (agent_name "retrieve"/"summarise"), the
//     routing candidates of the demo plan.
//   - procurement-agent on anthropic/claude-sonnet-4-5: a planner, 5-30
//     tool-using steps re-reading a cached working memory, and a writer: 5-30
//     times the tokens of a chat turn per task. From November 30% of its
//     steps go to openai/gpt-5.4-mini (a routing change, realised savings).
//   - marketing-copy on openai/gpt-5.4-mini: one call per draft, HKD 120 a draft,
//     half of the drafts accepted; its 1,500-token briefs are never cached
//     (absent caching). From 15 November prompt v3 doubles the brief and
//     moves to openai/gpt-5.4-nano: cheaper per call, but only 15% of drafts
//     are accepted, so cost per accepted draft rises (the "cheaper model,
//     longer prompt" pitfall, and an anomaly in tokens and calls per outcome).
//   - The procurement agent's writer caches its context for an hour for a
//     follow-up that never comes (cache writes never read back), and in 3%
//     of legal queries the plan step reads a whole case bundle of ~230,000
//     tokens on anthropic/claude-sonnet-4-5, over its long-context threshold.
//
// Volumes grow 8% a month. Everything is drawn from the planner's seeded
// generator, so the same seed and run id give the same history.
type Story struct {
	p     *Planner
	day   time.Time
	end   time.Time
	queue []*Request
	// Scale multiplies the daily volumes (1 = the documented figures).
	scale float64
}

// Story models.
var (
	ModelGPT54     = Model{"openai", "gpt-5.4"}
	ModelGPT54Mini = Model{"openai", "gpt-5.4-mini"}
	ModelOpus41    = Model{"anthropic", "claude-opus-4-1"}
	ModelGPT54Nano = Model{"openai", "gpt-5.4-nano"}
)

// Daily volumes on a weekday at scale 1, in the first month.
const (
	storySupportPerDay   = 50
	storyLegalPerDay     = 20
	storyAgentPerDay     = 12
	storyMarketingPerDay = 40
)

// NewStory plans the history from c.Base (a day boundary, UTC) to end.
func NewStory(c PlannerConfig, end time.Time, scale float64) *Story {
	c.Rate = 1 // unused: the story sets every request's time itself
	p := NewPlanner(c)
	if scale <= 0 {
		scale = 1
	}
	return &Story{p: p, day: p.base.Truncate(24 * time.Hour), end: end.UTC(), scale: scale}
}

// Calls reports how many model calls have been planned so far.
func (s *Story) Calls() int64 { return s.p.calls }

// Next is the next request in time order, nil when the history is done.
func (s *Story) Next() *Request {
	for len(s.queue) == 0 {
		if !s.day.Before(s.end) {
			return nil
		}
		s.planDay()
		s.day = s.day.Add(24 * time.Hour)
	}
	r := s.queue[0]
	s.queue = s.queue[1:]
	return r
}

func (s *Story) planDay() {
	p := s.p
	months := float64((s.day.Year()-p.base.Year())*12 + int(s.day.Month()) - int(p.base.Month()))
	k := s.scale
	for i := 0.0; i < months; i++ {
		k *= 1.08
	}
	if wd := s.day.Weekday(); wd == time.Saturday || wd == time.Sunday {
		k /= 3
	}
	n := func(perDay int) int { return int(float64(perDay)*k + 0.5) }
	var day []*Request
	add := func(count int, gen func() *Request) {
		for i := 0; i < count; i++ {
			p.seq++
			r := gen()
			r.Seq = p.seq
			r.At = s.day.Add(time.Hour + time.Duration(p.rng.Int64N(int64(9*time.Hour)))).Truncate(time.Millisecond)
			p.calls += int64(len(r.Calls))
			day = append(day, r)
		}
	}
	add(n(storySupportPerDay), s.support)
	add(n(storyLegalPerDay), s.legal)
	add(n(storyAgentPerDay), s.agent)
	add(n(storyMarketingPerDay), s.marketing)
	sort.SliceStable(day, func(i, j int) bool { return day[i].At.Before(day[j].At) })
	for _, r := range day {
		r.Path = p.enabled(PathHTTPJSON)
		p.finish(r)
		// Times inside a request must not reach back before the day began.
		s.queue = append(s.queue, r)
	}
}

func hkd(s string) *event.Money {
	return &event.Money{Amount: decimal.RequireFromString(s), Currency: "HKD"}
}

func (s *Story) support() *Request {
	p := s.p
	r := &Request{Workflow: WorkflowSupport, App: "support-copilot"}
	conv := "conv-" + p.id("cv", p.seq, 0, 8)
	user, session := p.user("agent", 40), "sess-"+p.id("ss", p.seq, 0, 6)
	prefix, version := int64(5000), "v3"
	if !s.day.Before(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)) {
		prefix, version = 3500, "v4"
	}
	turns := 3 + p.rng.IntN(3)
	for t := 0; t < turns; t++ {
		c := call(ModelGPT54)
		e := &c.Event
		e.InputTokens = prefix + p.tokens(1000, 0.3, 200, 4000)
		e.CacheReadInputTokens = prefix
		e.OutputTokens = p.tokens(400, 0.3, 80, 1500)
		e.PromptTemplate, e.PromptVersion = "support-answer", version
		e.UserID, e.Team, e.ConversationID, e.SessionID = user, "customer-support", conv, session
		r.Calls = append(r.Calls, c)
	}
	if p.chance(65) {
		r.Outcome = &event.OutcomeEvent{OutcomeType: "ticket_resolved", Count: 1, Value: hkd("12"), ConversationID: conv}
	}
	return r
}

func (s *Story) legal() *Request {
	p := s.p
	r := &Request{Workflow: WorkflowLegal, App: "legal-research"}
	p.newTrace(r, "legal_research.query")
	user := p.user("lawyer", 12)
	for _, st := range []string{"plan", "retrieve", "retrieve", "summarise", "answer"} {
		c := call(ModelOpus41)
		e := &c.Event
		e.AgentName = st
		switch st {
		case "retrieve", "summarise":
			e.InputTokens = p.tokens(180000, 0.3, 40000, 195000)
			e.OutputTokens = p.tokens(1200, 0.3, 200, 4000)
		default:
			e.InputTokens = p.tokens(80000, 0.3, 20000, 195000)
			e.OutputTokens = p.tokens(2500, 0.3, 300, 8000)
		}
		if st == "plan" && p.chance(3) {
			// The whole case bundle, above Sonnet 4.5's 200,000-token threshold:
			// every class of the request is billed at the long-context rates.
			e.Provider, e.Model = ModelSonnet45.Provider, ModelSonnet45.Name
			e.InputTokens = p.tokens(230000, 0.05, 205000, 260000)
		}
		e.PromptTemplate, e.PromptVersion, e.UserID, e.Team = "case-law-"+st, "v2", user, "legal"
		r.Calls = append(r.Calls, c)
	}
	r.Outcome = &event.OutcomeEvent{OutcomeType: "research_memo", Count: 1, Value: hkd("30"), TraceID: r.TraceID}
	return r
}

func (s *Story) agent() *Request {
	p := s.p
	r := &Request{Workflow: WorkflowAgent, App: "procurement-agent"}
	p.newTrace(r, "invoke_agent procurement-agent")
	conv := "conv-" + r.TraceID[:16]
	user := p.user("buyer", 15)
	routed := !s.day.Before(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	plan := call(ModelSonnet45)
	plan.Event.AgentName = "planner"
	plan.Event.InputTokens = p.tokens(2500, 0.2, 1500, 4000)
	plan.Event.OutputTokens = p.tokens(500, 0.4, 60, 2000)
	r.Calls = append(r.Calls, plan)
	// The loop keeps a bounded working memory (about 4,000 tokens, cached
	// after the first step), so a task's tokens grow with its steps: 5-30
	// steps are 5-30 times a chat turn.
	ctx := plan.Event.InputTokens + 1500
	steps := 5 + p.rng.IntN(26)
	for st := 0; st < steps; st++ {
		m := ModelSonnet45
		if routed && p.chance(30) {
			m = ModelGPT54Mini
		}
		c := call(m)
		e := &c.Event
		e.AgentName = "researcher"
		tool := p.tokens(400, 0.4, 50, 1500)
		e.InputTokens = ctx + tool
		if st > 0 && m == ModelSonnet45 {
			e.CacheReadInputTokens = ctx
		}
		e.OutputTokens = p.tokens(200, 0.5, 20, 1500)
		r.Calls = append(r.Calls, c)
	}
	final := call(ModelSonnet45)
	final.Event.AgentName = "writer"
	final.Event.InputTokens = p.tokens(3000, 0.3, 1000, 6000)
	// Cached for an hour for a follow-up that never comes.
	final.Event.CacheWriteInputTokens = final.Event.InputTokens / 2
	final.Event.CacheWrite1hInputTokens = final.Event.CacheWriteInputTokens
	final.Event.OutputTokens = p.tokens(800, 0.3, 100, 2000)
	r.Calls = append(r.Calls, final)
	for i := range r.Calls {
		e := &r.Calls[i].Event
		e.ConversationID, e.UserID, e.Team = conv, user, "procurement"
		e.PromptTemplate, e.PromptVersion = "procure-"+e.AgentName, "v2"
	}
	if p.chance(70) {
		r.Outcome = &event.OutcomeEvent{OutcomeType: "purchase_order_processed", Count: 1, Value: hkd("40"), TraceID: r.TraceID, ConversationID: conv}
	}
	return r
}

func (s *Story) marketing() *Request {
	p := s.p
	r := &Request{Workflow: WorkflowMarketing, App: "marketing-studio"}
	v3 := !s.day.Before(time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC))
	m, version, brief, accepted := ModelGPT54Mini, "v2", int64(1500), 50
	if v3 {
		m, version, brief, accepted = ModelGPT54Nano, "v3", 3000, 15
	}
	c := call(m)
	e := &c.Event
	e.InputTokens = p.tokens(float64(brief), 0.3, brief/4, brief*4)
	e.OutputTokens = p.tokens(700, 0.4, 80, 3000)
	e.PromptTemplate, e.PromptVersion = "ad-copy", version
	e.UserID, e.Team = p.user("marketer", 8), "marketing"
	r.Calls = append(r.Calls, c)
	if p.chance(accepted) {
		r.Outcome = &event.OutcomeEvent{OutcomeType: "document_drafted", Count: 1, Value: hkd("120")}
	}
	return r
}
