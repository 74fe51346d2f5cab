package ingest

import (
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Limits on what a span contributes to its event (DESIGN.md invariant 8).
const (
	// maxAttrKeyLen: longer attribute keys are ignored.
	maxAttrKeyLen = 256
	// maxKeptAttributes bounds the event's attributes map.
	maxKeptAttributes = 32
	// maxKeptValueLen: longer attribute values are not copied.
	maxKeptValueLen = 512
	// maxAncestorDepth bounds the walk from a usage span to its ancestors.
	maxAncestorDepth = 32
)

// DefaultKeptAttributes are the span and resource attributes copied into
// every OTLP event's attributes map, so attribution rules can match them
// (`when: {attributes.service.name: ...}`). Prompts and completions are never
// copied: only these names (globs with '*') and the configured ones.
func DefaultKeptAttributes() []string {
	return []string{
		"service.name", "service.namespace", "service.version",
		"deployment.environment.name", "deployment.environment",
		"k8s.namespace.name", "k8s.deployment.name", "cloud.region",
		"gen_ai.workflow.name", "gen_ai.agent.name",
		"traceloop.workflow.name", "traceloop.association.properties.*",
		"tokenmeter.*", "app.*",
	}
}

type spanKey struct {
	trace pcommon.TraceID
	span  pcommon.SpanID
}

// spanRec is one span of an export with what the mapper needs of it.
type spanRec struct {
	span   ptrace.Span
	scope  pcommon.InstrumentationScope
	res    pcommon.Resource
	resIdx int
	s      slots
	// usage: carries at least one usage attribute; call: a model call
	// (usage, or a model-call operation on a model without usage).
	usage, call bool
	instr       instrumentation
	parent      int // index of the parent span in this export; -1 if not here
}

// batch is one export request, indexed so a usage span can find its
// ancestors and the other reports of the same model call.
type batch struct {
	m     *SpanMapper
	spans []spanRec
	res   []slots
}

func (m *SpanMapper) collect(td ptrace.Traces) *batch {
	b := &batch{m: m}
	rss := td.ResourceSpans()
	n := 0
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			n += sss.At(j).Spans().Len()
		}
	}
	b.spans = make([]spanRec, 0, n)
	b.res = make([]slots, rss.Len())
	var index map[spanKey]int
	if n > 1 {
		index = make(map[spanKey]int, n)
	}
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		m.scan(&b.res[i], rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				b.spans = append(b.spans, spanRec{span: sp, scope: sss.At(j).Scope(), res: rs.Resource(), resIdx: i, parent: -1})
				r := &b.spans[len(b.spans)-1]
				m.scan(&r.s, sp.Attributes())
				r.usage = r.s[tInput].set || r.s[tOutput].set || r.s[tCacheRead].set || r.s[tCacheWrite].set || r.s[tReasoning].set
				r.call = r.usage || (r.s[tModel].set && r.s[tOperation].set && modelCallOperation(r.s[tOperation].v.AsString()))
				if r.call {
					r.instr = identify(r.scope, r.res, sp.Attributes())
				}
				if index != nil {
					index[spanKey{sp.TraceID(), sp.SpanID()}] = len(b.spans) - 1
				}
			}
		}
	}
	if index != nil {
		for i := range b.spans {
			sp := b.spans[i].span
			if p := sp.ParentSpanID(); !p.IsEmpty() {
				if j, ok := index[spanKey{sp.TraceID(), p}]; ok && j != i {
					b.spans[i].parent = j
				}
			}
		}
	}
	return b
}

// ancestors calls fn for each ancestor of span i in this export, nearest
// first, at most maxAncestorDepth of them; fn returns false to stop.
func (b *batch) ancestors(i int, fn func(j int) bool) {
	for d, j := 0, b.spans[i].parent; j >= 0 && d < maxAncestorDepth; d, j = d+1, b.spans[j].parent {
		if !fn(j) {
			return
		}
	}
}

// inherit fills the attribution fields s lacks from span i's ancestors.
func (b *batch) inherit(i int, s *slots) {
	b.ancestors(i, func(j int) bool {
		a := &b.spans[j].s
		missing := false
		for _, t := range attributionTargets {
			if !s[t].set && a[t].set {
				s[t] = a[t]
			}
			missing = missing || !s[t].set
		}
		return missing
	})
}

// keptAttributes copies the kept span, ancestor and resource attributes of
// span i (nearest wins) into a map; nil when there are none.
func (b *batch) keptAttributes(i int) map[string]string {
	if len(b.m.keep) == 0 && len(b.m.keepExact) == 0 {
		return nil
	}
	var out map[string]string
	add := func(attrs pcommon.Map) {
		for k, v := range attrs.All() {
			if len(out) >= maxKeptAttributes {
				return
			}
			if len(k) > maxAttrKeyLen || !b.m.kept(k) {
				continue
			}
			if _, dup := out[k]; dup {
				continue
			}
			var s string
			switch v.Type() {
			case pcommon.ValueTypeStr:
				s = v.Str()
			case pcommon.ValueTypeInt, pcommon.ValueTypeBool, pcommon.ValueTypeDouble:
				s = v.AsString()
			default:
				continue
			}
			if len(s) > maxKeptValueLen {
				continue
			}
			if out == nil {
				out = make(map[string]string, 4)
			}
			out[k] = s
		}
	}
	add(b.spans[i].span.Attributes())
	b.ancestors(i, func(j int) bool { add(b.spans[j].span.Attributes()); return true })
	add(b.spans[i].res.Attributes())
	return out
}

func (m *SpanMapper) kept(k string) bool {
	if _, ok := m.keepExact[k]; ok {
		return true
	}
	for i := range m.keep {
		if m.keep[i].Match(k) {
			return true
		}
	}
	return false
}

// Deduplication: one model call is one event.
//
// Two spans report the same call when, in one trace, they carry the same
// gen_ai.response.id (an SDK's own span beside an instrumentation's), or one
// is an ancestor of the other and both carry usage for the same model with
// the same input and output counts (a wrapper span copying its child's
// usage), or one of them is a model-call span without usage whose ancestor
// or descendant carries usage for the same model. The span kept is the one
// with the most complete usage (complete > upper/lower bound > missing),
// then the one with more token classes reported, then the innermost (closest
// to the HTTP call), then the lowest span id. Across exports, the collector
// remembers (tenant, trace, response id) for a bounded window (CallMemory):
// a later span of an already-counted call is a duplicate, the first one
// stays. Duplicates are counted (tokenmeter_collector_spans_duplicate_total)
// and not produced.
func (m *SpanMapper) dedupe(b *batch, results []SpanResult, tenant string, now time.Time) {
	var byResp map[string]int       // trace|response id -> index of the kept span
	better := func(i, j int) bool { // is i a better report than j?
		ri, rj := &results[i].Event, &results[j].Event
		if ci, cj := completenessRank(ri), completenessRank(rj); ci != cj {
			return ci > cj
		}
		if ni, nj := classes(&b.spans[i].s), classes(&b.spans[j].s); ni != nj {
			return ni > nj
		}
		if di, dj := b.depth(i), b.depth(j); di != dj {
			return di > dj
		}
		return ri.SpanID < rj.SpanID
	}
	mark := func(loser, winner int) {
		results[loser].Duplicate = true
		results[loser].DuplicateOf = results[winner].Event.EventID
	}
	for i := range results {
		if !b.spans[i].call || results[i].Err != nil {
			continue
		}
		ev := &results[i].Event
		if rid := b.spans[i].s[tResponseID]; rid.set && rid.v.AsString() != "" {
			k := ev.TraceID + "|" + rid.v.AsString()
			if byResp == nil {
				byResp = map[string]int{}
			}
			if j, ok := byResp[k]; ok {
				if better(i, j) {
					mark(j, i)
					byResp[k] = i
				} else {
					mark(i, j)
				}
				continue
			}
			byResp[k] = i
		}
	}
	// Parent/child pairs of the same call.
	for i := range results {
		if !b.spans[i].call || results[i].Err != nil || results[i].Duplicate {
			continue
		}
		b.ancestors(i, func(j int) bool {
			if !b.spans[j].call || results[j].Err != nil || results[j].Duplicate || !sameCall(&results[i].Event, &results[j].Event) {
				return true
			}
			if better(i, j) {
				mark(j, i)
			} else {
				mark(i, j)
				return false
			}
			return true
		})
	}
	// A span whose usage is the sum of two or more calls below it (an agent
	// or framework span aggregating its children) reports nothing of its own.
	type sum struct {
		in, out int64
		n       int
		first   int
	}
	var sums map[int]*sum
	for i := range results {
		if !b.spans[i].usage || results[i].Err != nil || results[i].Duplicate {
			continue
		}
		b.ancestors(i, func(j int) bool {
			if !b.spans[j].usage || results[j].Err != nil || results[j].Duplicate {
				return true
			}
			if sums == nil {
				sums = map[int]*sum{}
			}
			sm := sums[j]
			if sm == nil {
				sm = &sum{first: i}
				sums[j] = sm
			}
			sm.in += results[i].Event.InputTokens
			sm.out += results[i].Event.OutputTokens
			sm.n++
			return false // only the nearest usage ancestor
		})
	}
	for j, sm := range sums {
		if ev := &results[j].Event; sm.n >= 2 && sm.in == ev.InputTokens && sm.out == ev.OutputTokens {
			mark(j, sm.first)
		}
	}
	if m.calls == nil {
		return
	}
	for i := range results {
		if results[i].Duplicate || results[i].Err != nil || !b.spans[i].call {
			continue
		}
		rid := b.spans[i].s[tResponseID]
		if !rid.set || rid.v.AsString() == "" {
			continue
		}
		ev := &results[i].Event
		if first, dup := m.calls.seen(tenant+"|"+ev.TraceID+"|"+rid.v.AsString(), ev.EventID, now); dup {
			results[i].Duplicate = true
			results[i].DuplicateOf = first
		}
	}
}

// sameCall: a and b (one the other's ancestor) report one model call.
func sameCall(a, b *event.UsageEvent) bool {
	if a.Model != b.Model && a.Model != "" && b.Model != "" {
		return false
	}
	if a.Unmetered() || b.Unmetered() {
		return true
	}
	return a.InputTokens == b.InputTokens && a.OutputTokens == b.OutputTokens
}

func completenessRank(e *event.UsageEvent) int {
	switch e.UsageCompleteness {
	case "", event.UsageComplete:
		return 3
	case event.UsageMissing:
		return 1
	}
	return 2
}

func classes(s *slots) int {
	n := 0
	for _, t := range [...]target{tInput, tOutput, tCacheRead, tCacheWrite, tReasoning} {
		if s[t].set {
			n++
		}
	}
	return n
}

func (b *batch) depth(i int) int {
	d := 0
	b.ancestors(i, func(int) bool { d++; return true })
	return d
}

// CallMemory remembers which span reported a model call (by tenant, trace
// and gen_ai.response.id) for a bounded time and number of calls, so a
// second report of the call in a later export is recognised. It is
// per-process: collectors behind a load balancer each have their own.
type CallMemory struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	ids    map[string]string // key -> event id of the first report
	order  []callAt
	head   int
}

type callAt struct {
	key string
	at  time.Time
}

// NewCallMemory remembers up to max calls for window each.
func NewCallMemory(window time.Duration, max int) *CallMemory {
	return &CallMemory{window: window, max: max, ids: map[string]string{}}
}

// seen records key → eventID and reports whether another event id reported
// the call before (and which). A re-sent span (same event id) is not a
// duplicate here: the processor's event_id dedupe handles it.
func (c *CallMemory) seen(key, eventID string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.head < len(c.order) && (now.Sub(c.order[c.head].at) > c.window || len(c.ids) > c.max) {
		delete(c.ids, c.order[c.head].key)
		c.order[c.head] = callAt{}
		c.head++
	}
	if c.head > 1024 && c.head > len(c.order)/2 {
		c.order = append(c.order[:0:0], c.order[c.head:]...)
		c.head = 0
	}
	if first, ok := c.ids[key]; ok {
		return first, first != eventID
	}
	c.ids[key] = eventID
	c.order = append(c.order, callAt{key: key, at: now})
	return "", false
}

// WithCallMemory makes m recognise reports of one call across exports.
func (m *SpanMapper) WithCallMemory(c *CallMemory) *SpanMapper {
	m.calls = c
	return m
}
