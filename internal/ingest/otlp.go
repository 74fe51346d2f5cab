package ingest

import (
	"encoding/hex"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/glob"
	"math"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// AttributeSources names, per event field, the span or resource attributes
// it is read from, first match wins; span attributes win over resource
// attributes. The pipeline config extends these (collector.attributes).
type AttributeSources struct {
	Workflow       []string
	Team           []string
	PromptVersion  []string
	PromptTemplate []string
	Application    []string
	Environment    []string
	UserID         []string
	// Keep names the span and resource attributes copied into the event's
	// attributes map (where attribution rules match attributes.<key>): exact
	// names or globs with '*'. DefaultAttributeSources lists the defaults.
	Keep []string
}

// DefaultAttributeSources are the OTel GenAI / general semantic-convention
// names (current first, then older spellings) and tokenmeter's own.
func DefaultAttributeSources() AttributeSources {
	return AttributeSources{
		// traceloop.*: OpenLLMetry's @workflow name and association properties.
		Workflow:       []string{"gen_ai.workflow.name", "tokenmeter.workflow", "traceloop.workflow.name"},
		Team:           []string{"tokenmeter.team", "traceloop.association.properties.team"},
		PromptVersion:  []string{"gen_ai.prompt.version", "tokenmeter.prompt_version", "traceloop.prompt.version"},
		PromptTemplate: []string{"gen_ai.prompt.name", "tokenmeter.prompt_template", "traceloop.prompt.key"},
		Application:    []string{"service.name"},
		Environment:    []string{"deployment.environment.name", "deployment.environment"},
		UserID:         []string{"user.id", "enduser.id", "traceloop.association.properties.user_id", "traceloop.association.properties.user.id"},
		Keep:           DefaultKeptAttributes(),
	}
}

type target uint8

const (
	tProvider target = iota
	tModel
	tOperation
	tInput
	tOutput
	tCacheRead
	tCacheWrite
	tReasoning
	tWorkflow
	tTeam
	tPromptVersion
	tPromptTemplate
	tApplication
	tEnvironment
	tUserID
	tAgent
	tConversation
	tSession
	tServiceTier
	tRegion
	tResponseID
	tStream
	numTargets
)

// attributionTargets are the fields a usage span inherits from its ancestors
// in the trace when it does not carry them itself.
var attributionTargets = [...]target{tWorkflow, tTeam, tPromptVersion, tPromptTemplate, tUserID, tAgent, tConversation, tSession}

var targetField = [numTargets]string{
	tProvider: "provider", tModel: "model", tOperation: "operation", tInput: "input_tokens", tOutput: "output_tokens",
	tCacheRead: "cache_read_input_tokens", tCacheWrite: "cache_write_input_tokens", tReasoning: "reasoning_tokens",
	tWorkflow: "workflow", tTeam: "team", tPromptVersion: "prompt_version", tPromptTemplate: "prompt_template",
	tApplication: "application", tEnvironment: "environment", tUserID: "user_id", tAgent: "agent_name",
	tConversation: "conversation_id", tSession: "session_id", tServiceTier: "service_tier", tRegion: "region",
	tResponseID: "gen_ai.response.id", tStream: "stream",
}

type source struct {
	t    target
	rank uint8
}

// SpanMapper turns GenAI spans into usage events. Build it once with
// NewSpanMapper; it is safe for concurrent use.
type SpanMapper struct {
	byKey map[string][]source
	// keepExact and keep (globs) name the attributes copied into events.
	keepExact map[string]struct{}
	keep      []glob.Pattern
	// calls remembers the model calls of earlier exports (nil: per export only).
	calls *CallMemory
}

// NewSpanMapper builds a mapper from the built-in GenAI attribute names plus
// the configured sources.
func NewSpanMapper(src AttributeSources) *SpanMapper {
	m := &SpanMapper{byKey: map[string][]source{}}
	m.keepExact = map[string]struct{}{}
	for _, k := range src.Keep {
		if p := glob.Compile(k); p.IsExact() {
			m.keepExact[k] = struct{}{}
		} else {
			m.keep = append(m.keep, p)
		}
	}
	add := func(t target, names ...string) {
		for i, n := range names {
			if n == "" {
				continue
			}
			m.byKey[n] = append(m.byKey[n], source{t: t, rank: uint8(min(i, 255))})
		}
	}
	add(tProvider, "gen_ai.provider.name", "gen_ai.system")
	add(tModel, "gen_ai.response.model", "gen_ai.request.model")
	add(tOperation, "gen_ai.operation.name")
	add(tInput, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
	add(tOutput, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
	add(tCacheRead, "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
	add(tCacheWrite, "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.cache_creation_input_tokens")
	add(tReasoning, "gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens")
	add(tAgent, "gen_ai.agent.name")
	add(tConversation, "gen_ai.conversation.id")
	add(tSession, "session.id", "traceloop.association.properties.session_id")
	add(tServiceTier, "openai.response.service_tier", "gen_ai.openai.response.service_tier", "anthropic.response.service_tier",
		"gen_ai.anthropic.response.service_tier", "openai.request.service_tier", "gen_ai.openai.request.service_tier",
		"anthropic.request.service_tier")
	add(tResponseID, "gen_ai.response.id")
	add(tStream, "gen_ai.request.stream", "gen_ai.request.is_stream", "llm.is_streaming")
	add(tRegion, "cloud.region")
	add(tWorkflow, src.Workflow...)
	add(tTeam, src.Team...)
	add(tPromptVersion, src.PromptVersion...)
	add(tPromptTemplate, src.PromptTemplate...)
	add(tApplication, src.Application...)
	add(tEnvironment, src.Environment...)
	add(tUserID, src.UserID...)
	return m
}

type slot struct {
	v    pcommon.Value
	key  string
	rank uint8
	set  bool
}

type slots [numTargets]slot

func (m *SpanMapper) scan(s *slots, attrs pcommon.Map) {
	for k, v := range attrs.All() {
		if len(k) > maxAttrKeyLen {
			continue
		}
		for _, src := range m.byKey[k] {
			sl := &s[src.t]
			if !sl.set || src.rank < sl.rank {
				*sl = slot{v: v, key: k, rank: src.rank, set: true}
			}
		}
	}
}

// SpanResult is the outcome of mapping one span: an event, a skip (no usage
// attributes), a duplicate of another span's model call, or a rejection.
type SpanResult struct {
	Event   event.UsageEvent
	Skipped bool
	// Duplicate: the span reports a model call another span already reported
	// (same gen_ai.response.id in the trace, or a parent/child pair both
	// carrying the call's usage); DuplicateOf is the event id kept.
	Duplicate   bool
	DuplicateOf string
	Err         *ItemError
	// Span, Scope and Resource are the span mapped and where it came from;
	// valid only during the callback (e.g. to keep a rejected span's original).
	Span     ptrace.Span
	Scope    pcommon.InstrumentationScope
	Resource pcommon.Resource
}

// MapTraces maps every span of td, calling fn once per span in order.
// Spans without GenAI usage are reported as skipped, the second report of a
// model call as a duplicate. tenant is the authenticated tenant; now bounds
// event_time.
func (m *SpanMapper) MapTraces(td ptrace.Traces, tenant string, now time.Time, fn func(*SpanResult)) {
	b := m.collect(td)
	results := make([]SpanResult, len(b.spans))
	for i := range b.spans {
		sr := &b.spans[i]
		r := &results[i]
		*r = SpanResult{Span: sr.span, Scope: sr.scope, Resource: sr.res}
		if !sr.call {
			r.Skipped = true
			continue
		}
		m.mapSpan(b, i, tenant, now, r)
	}
	m.dedupe(b, results, tenant, now)
	for i := range results {
		fn(&results[i])
	}
}

func (m *SpanMapper) mapSpan(b *batch, i int, tenant string, now time.Time, r *SpanResult) {
	sr := &b.spans[i]
	sp := sr.span
	s := sr.s
	res := &b.res[sr.resIdx]
	// Attribution the span lacks comes from its ancestors in this export
	// (the workflow span the app opened around the call), nearest first,
	// then from the resource.
	b.inherit(i, &s)
	for t := range s {
		if !s[t].set && res[t].set {
			s[t] = res[t]
		}
	}
	ev := &r.Event
	var problems []event.FieldError
	str := func(t target) string {
		if !s[t].set {
			return ""
		}
		return s[t].v.AsString()
	}
	num := func(t target) int64 {
		if !s[t].set {
			return 0
		}
		n, err := attrInt(s[t].v)
		if err != nil {
			problems = append(problems, event.FieldError{Field: targetField[t], Reason: fmt.Sprintf("attribute %s: %v", s[t].key, err)})
		}
		return n
	}
	tid, sid := sp.TraceID(), sp.SpanID()
	ev.TraceID = hex.EncodeToString(tid[:])
	ev.SpanID = hex.EncodeToString(sid[:])
	// A re-sent span is the same event: the id depends only on trace and span id.
	ev.EventID = ev.TraceID + "-" + ev.SpanID
	ts := sp.EndTimestamp()
	if ts == 0 {
		ts = sp.StartTimestamp()
	}
	if ts != 0 {
		ev.EventTime = NormaliseTime(ts.AsTime())
	}
	ev.Tenant = tenant
	ev.Provider = NormaliseProvider(str(tProvider))
	ev.Model = str(tModel)
	ev.Operation = str(tOperation)
	ev.ServiceTier = normaliseServiceTier(str(tServiceTier))
	ev.Region = str(tRegion)
	ev.InputTokens = num(tInput)
	ev.OutputTokens = num(tOutput)
	ev.CacheReadInputTokens = num(tCacheRead)
	ev.CacheWriteInputTokens = num(tCacheWrite)
	ev.ReasoningTokens = num(tReasoning)
	ev.Workflow = str(tWorkflow)
	ev.Team = str(tTeam)
	ev.PromptVersion = str(tPromptVersion)
	ev.PromptTemplate = str(tPromptTemplate)
	ev.Application = str(tApplication)
	ev.Environment = str(tEnvironment)
	ev.UserID = str(tUserID)
	ev.AgentName = str(tAgent)
	ev.ConversationID = str(tConversation)
	ev.SessionID = str(tSession)
	ev.Attributes = b.keptAttributes(i)
	if len(problems) == 0 {
		sr.instr.normalise(ev, &s)
	}
	if err := ev.Validate(now); err != nil {
		if ve, ok := err.(*event.ValidationError); ok {
			problems = append(problems, ve.Problems...)
		} else {
			problems = append(problems, event.FieldError{Reason: err.Error()})
		}
	}
	if len(problems) > 0 {
		r.Err = &ItemError{Reason: ReasonInvalidUsage, Problems: problems}
	}
}

// attrInt reads a token count from an attribute of any numeric-looking type:
// instrumentations send ints, doubles and, rarely, strings.
func attrInt(v pcommon.Value) (int64, error) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), nil
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > 1<<53 {
			return 0, fmt.Errorf("%v is not a whole number", f)
		}
		return int64(f), nil
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", v.Str())
		}
		return n, nil
	}
	return 0, fmt.Errorf("has type %s, want an integer", v.Type())
}
