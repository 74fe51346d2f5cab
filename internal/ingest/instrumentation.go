package ingest

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// instrumentation is the library that produced a span. Libraries follow the
// OTel GenAI conventions to different degrees; each one's departures are
// corrected here so every span yields the canonical counts (input includes
// cache reads and writes, output includes reasoning) and says what the
// library could not report (event.UsageCompleteness).
//
// Checked against the pinned versions in tests/python/instrumentations
// (TestRealInstrumentations); docs/ingest.md, "Instrumentation libraries",
// says per library what it cannot report.
type instrumentation uint8

const (
	// instrOTel: the OTel GenAI conventions as written; unknown scopes too.
	instrOTel instrumentation = iota
	// instrOpenAIv2: opentelemetry-instrumentation-openai-v2 (the official
	// one; scope opentelemetry.instrumentation.openai_v2, or since 2.x
	// opentelemetry.util.genai.handler on OpenAI spans). Its chat spans carry
	// no cache attribute (2.4b0): cached prompt tokens are inside
	// gen_ai.usage.input_tokens but cannot be told apart.
	instrOpenAIv2
	// instrOpenLIT: OpenLIT. For Anthropic it writes Anthropic's own
	// input_tokens, which EXCLUDES cache reads and writes, into
	// gen_ai.usage.input_tokens.
	instrOpenLIT
	// instrOpenLLMetry: Traceloop's OpenLLMetry instrumentations
	// (opentelemetry-instrumentation-openai / -anthropic, traceloop-sdk).
	// Input already includes cache reads and writes for Anthropic.
	instrOpenLLMetry
)

var instrumentationNames = [...]string{instrOTel: "otel", instrOpenAIv2: "openai-v2", instrOpenLIT: "openlit", instrOpenLLMetry: "openllmetry"}

func (in instrumentation) String() string { return instrumentationNames[in] }

// identify picks the library from the instrumentation scope, falling back to
// what the SDKs leave on the span and resource (OpenLIT sets
// telemetry.sdk.name=openlit; OpenLLMetry's older versions llm.request.type).
func identify(scope pcommon.InstrumentationScope, res pcommon.Resource, sp pcommon.Map) instrumentation {
	name := scope.Name()
	switch {
	case strings.HasPrefix(name, "opentelemetry.instrumentation.openai_v2"):
		return instrOpenAIv2
	case strings.HasPrefix(name, "opentelemetry.util.genai") && isOpenAI(sp):
		// openai-v2 2.4b0 creates its spans through opentelemetry-util-genai's
		// handler (scope opentelemetry.util.genai.handler, util-genai's version).
		return instrOpenAIv2
	case strings.HasPrefix(name, "openlit"):
		return instrOpenLIT
	case name == "opentelemetry.instrumentation.openai" || strings.HasPrefix(name, "opentelemetry.instrumentation.openai.") ||
		name == "opentelemetry.instrumentation.anthropic" || strings.HasPrefix(name, "opentelemetry.instrumentation.anthropic."):
		// Traceloop's packages (the official OpenAI one is openai_v2).
		return instrOpenLLMetry
	}
	// OpenLIT writes telemetry.sdk.name=openlit on each span (the resource
	// says "opentelemetry" when the app brings its own provider).
	for _, attrs := range [...]pcommon.Map{sp, res.Attributes()} {
		if v, ok := attrs.Get("telemetry.sdk.name"); ok && strings.EqualFold(v.AsString(), "openlit") {
			return instrOpenLIT
		}
	}
	if _, ok := sp.Get("llm.request.type"); ok {
		return instrOpenLLMetry
	}
	return instrOTel
}

func isOpenAI(sp pcommon.Map) bool {
	for _, k := range [...]string{"gen_ai.provider.name", "gen_ai.system"} {
		if v, ok := sp.Get(k); ok {
			return NormaliseProvider(v.AsString()) == "openai"
		}
	}
	return false
}

// normalise turns what the library reported into canonical counts and sets
// the event's usage completeness. s holds the span's attributes (with its
// resource's and ancestors' filled in).
func (in instrumentation) normalise(ev *event.UsageEvent, s *slots) {
	cacheReported := s[tCacheRead].set || s[tCacheWrite].set
	omitted := false
	switch in {
	case instrOpenLIT:
		if ev.Provider == "anthropic" {
			// OpenLIT's gen_ai.usage.input_tokens is Anthropic's uncached
			// input; the cache classes come on top of it.
			ev.InputTokens += ev.CacheReadInputTokens + ev.CacheWriteInputTokens
			// Reading a stream, OpenLIT (1.45) takes the cache counts from
			// the final message_delta event, which carries only
			// output_tokens: cache reads and writes arrive as 0 and are
			// missing from every count.
			omitted = isTrue(s[tStream]) && ev.CacheReadInputTokens == 0 && ev.CacheWriteInputTokens == 0
		}
	}
	usage := s[tInput].set || s[tOutput].set || cacheReported || s[tReasoning].set
	switch {
	case !usage:
		ev.UsageCompleteness = event.UsageMissing
	case omitted:
		ev.UsageCompleteness = event.UsageCacheOmitted
	case !cacheReported && in.omitsCache(ev):
		ev.UsageCompleteness = event.UsageCacheUnreported
	default:
		ev.UsageCompleteness = "" // complete
	}
}

func isTrue(sl slot) bool {
	if !sl.set {
		return false
	}
	switch sl.v.Type() {
	case pcommon.ValueTypeBool:
		return sl.v.Bool()
	case pcommon.ValueTypeStr:
		return strings.EqualFold(sl.v.Str(), "true")
	}
	return false
}

// omitsCache reports whether this library is known to leave out cache
// counts for such a call, so their absence does not mean "no cache hit".
func (in instrumentation) omitsCache(ev *event.UsageEvent) bool {
	if !cachingOperation(ev.Operation) || ev.InputTokens == 0 {
		return false
	}
	switch in {
	case instrOpenAIv2:
		// Chat completions spans never carry cached tokens (2.4b0).
		return true
	case instrOpenLIT, instrOpenLLMetry:
		// Both report cache counts when the provider sends them (zero
		// included); a span without them lost them (e.g. a stream read
		// without its usage chunk).
		return true
	}
	return false
}

// cachingOperation: operations whose input a provider may serve from its
// prompt cache ("" = unknown, treated as chat).
func cachingOperation(op string) bool {
	switch op {
	case "", "chat", "text_completion", "generate_content", "invoke_agent", "responses":
		return true
	}
	return false
}

// modelCallOperation: a span with one of these gen_ai.operation.name values
// and a model is a billable model call even when it carries no usage.
func modelCallOperation(op string) bool {
	switch op {
	case "chat", "text_completion", "generate_content", "embeddings", "responses":
		return true
	}
	return false
}
