package loadgen

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Totals are token sums over a set of calls.
type Totals struct {
	Calls                 int64 `json:"calls"`
	InputTokens           int64 `json:"input_tokens"`
	CacheReadInputTokens  int64 `json:"cache_read_input_tokens"`
	CacheWriteInputTokens int64 `json:"cache_write_input_tokens"`
	OutputTokens          int64 `json:"output_tokens"`
	ReasoningTokens       int64 `json:"reasoning_tokens"`
}

// Add counts one call.
func (t *Totals) Add(e *event.UsageEvent) {
	t.Calls++
	t.InputTokens += e.InputTokens
	t.CacheReadInputTokens += e.CacheReadInputTokens
	t.CacheWriteInputTokens += e.CacheWriteInputTokens
	t.OutputTokens += e.OutputTokens
	t.ReasoningTokens += e.ReasoningTokens
}

// PathStats counts what one path sent and how the collector answered.
type PathStats struct {
	// Requests is HTTP requests (or OTLP exports) made, not counting retries.
	Requests int64 `json:"requests"`
	// Retries is extra attempts after 503/429/connection errors.
	Retries int64 `json:"retries"`
	// Sent is items sent: usage events, provider-native objects, GenAI spans, outcomes.
	Sent int64 `json:"sent"`
	// Accepted items were acknowledged by the collector (2xx and not listed as rejected).
	Accepted int64 `json:"accepted"`
	// Rejected items were refused by the collector, with Reasons.
	Rejected int64 `json:"rejected"`
	// Failed items got no answer after every attempt (or a non-item error).
	Failed  int64            `json:"failed"`
	Reasons map[string]int64 `json:"reasons,omitempty"`
	// Errors are request-level failures (transport errors, unexpected statuses), by message.
	Errors map[string]int64 `json:"errors,omitempty"`
}

// BadStats follows the deliberately bad calls of one kind.
type BadStats struct {
	Sent int64 `json:"sent"`
	// RejectedAtIngest were refused by the collector (expected for cache_read_exceeds_input).
	RejectedAtIngest int64 `json:"rejected_at_ingest"`
	// AcceptedAtIngest passed the collector (expected for unknown_model: the
	// processor cannot price it and sends it to the DLQ).
	AcceptedAtIngest int64 `json:"accepted_at_ingest"`
	Failed           int64 `json:"failed"`
	// ByPath splits the same counts by the path the calls took.
	ByPath map[Path]*BadStats `json:"by_path,omitempty"`
}

func (b *BadStats) count(r result) {
	b.Sent++
	switch {
	case r.accepted:
		b.AcceptedAtIngest++
	case r.failed:
		b.Failed++
	default:
		b.RejectedAtIngest++
	}
}

// badExpectation says what the pipeline should do with a bad call of kind
// sent through path, and whether ingest accepting it is right.
func badExpectation(kind string, path Path) (expect string, acceptOK bool) {
	switch {
	case kind == BadUnknownModel:
		return "well-formed, so accepted at ingest; the processor should write them to the DLQ as unknown_model", true
	case path == PathKafka:
		return "acknowledged by the broker; the processor should write them to the DLQ as invalid_field", true
	default:
		return "the collector should reject them", false
	}
}

// OutcomeTotals sums accepted outcomes of one workflow and type.
type OutcomeTotals struct {
	Count int64 `json:"count"`
	// Value sums outcome values per currency, exactly.
	Value map[string]decimal.Decimal `json:"value,omitempty"`
}

// Summary is what a run sent and what the collector said. Safe for concurrent use.
type Summary struct {
	mu sync.Mutex

	RunID    string               `json:"run_id"`
	Seed     uint64               `json:"seed"`
	Target   string               `json:"target"`
	Rate     float64              `json:"rate"`
	Elapsed  time.Duration        `json:"elapsed_ns"`
	Requests int64                `json:"user_requests"`
	Planned  int64                `json:"calls_planned"`
	Paths    map[Path]*PathStats  `json:"paths"`
	Outcomes PathStats            `json:"outcomes"`
	Bad      map[string]*BadStats `json:"bad"`
	// Expected sums the good calls the collector accepted, per workflow: what
	// the pipeline should meter from this run.
	Expected map[string]*Totals `json:"expected"`
	// Unconfirmed sums good calls that failed or were unexpectedly rejected.
	Unconfirmed    map[string]*Totals                   `json:"unconfirmed,omitempty"`
	OutcomesByType map[string]map[string]*OutcomeTotals `json:"outcomes_by_type"`
	// ExpectedSpend prices Expected with Config.Price, per workflow, in
	// SpendCurrency; absent without a pricer.
	ExpectedSpend map[string]decimal.Decimal `json:"expected_spend,omitempty"`
	SpendCurrency string                     `json:"spend_currency,omitempty"`
	// Unpriced counts good accepted calls the pricer could not price, by error.
	Unpriced map[string]int64 `json:"unpriced,omitempty"`
	price    func(ev *event.UsageEvent) (decimal.Decimal, string, error)
	// Gateway counts the calls made through the metering gateway (nil when unused).
	Gateway *GatewayStats `json:"gateway,omitempty"`
	// Warnings are paths dropped at start (an unreachable Kafka broker).
	Warnings []string `json:"warnings,omitempty"`
}

func newSummary(cfg *Config) *Summary {
	s := &Summary{
		RunID: cfg.RunID, Seed: cfg.Seed, Target: cfg.Target, Rate: cfg.Rate,
		Paths: map[Path]*PathStats{}, Bad: map[string]*BadStats{},
		Expected: map[string]*Totals{}, Unconfirmed: map[string]*Totals{},
		OutcomesByType: map[string]map[string]*OutcomeTotals{},
	}
	for _, p := range cfg.Paths {
		s.Paths[p] = &PathStats{}
	}
	for _, w := range Workflows {
		s.Expected[w] = &Totals{}
	}
	if cfg.Price != nil {
		s.price = cfg.Price
		s.ExpectedSpend = map[string]decimal.Decimal{}
		s.Unpriced = map[string]int64{}
	}
	return s
}

// result is the collector's verdict on one item.
type result struct {
	accepted bool
	failed   bool
	reason   string // rejection reason (with the field when known)
}

func (s *Summary) path(p Path) *PathStats {
	ps := s.Paths[p]
	if ps == nil {
		ps = &PathStats{}
		s.Paths[p] = ps
	}
	return ps
}

// request counts one HTTP request or export and its retries.
func (s *Summary) request(p *PathStats, retries int, errMsg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Requests++
	p.Retries += int64(retries)
	if errMsg != "" {
		if p.Errors == nil {
			p.Errors = map[string]int64{}
		}
		p.Errors[errMsg]++
	}
}

func (ps *PathStats) count(r result) {
	ps.Sent++
	switch {
	case r.accepted:
		ps.Accepted++
	case r.failed:
		ps.Failed++
	default:
		ps.Rejected++
		if ps.Reasons == nil {
			ps.Reasons = map[string]int64{}
		}
		ps.Reasons[r.reason]++
	}
}

// usage records the verdict on one call.
func (s *Summary) usage(c *Call, r result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.path(c.Path).count(r)
	if c.Bad != "" {
		b := s.Bad[c.Bad]
		if b == nil {
			b = &BadStats{ByPath: map[Path]*BadStats{}}
			s.Bad[c.Bad] = b
		}
		b.count(r)
		bp := b.ByPath[c.Path]
		if bp == nil {
			bp = &BadStats{}
			b.ByPath[c.Path] = bp
		}
		bp.count(r)
		return
	}
	m := s.Expected
	if !r.accepted {
		m = s.Unconfirmed
	}
	t := m[c.Event.Workflow]
	if t == nil {
		t = &Totals{}
		m[c.Event.Workflow] = t
	}
	t.Add(&c.Event)
	if r.accepted && s.price != nil {
		amount, cur, err := s.price(&c.Event)
		switch {
		case err != nil:
			s.Unpriced[firstLine([]byte(err.Error()))]++
		case s.SpendCurrency != "" && cur != s.SpendCurrency:
			s.Unpriced["priced in "+cur+", not "+s.SpendCurrency]++
		default:
			s.SpendCurrency = cur
			s.ExpectedSpend[c.Event.Workflow] = s.ExpectedSpend[c.Event.Workflow].Add(amount)
		}
	}
}

// outcome records the verdict on one outcome.
func (s *Summary) outcome(o *event.OutcomeEvent, r result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Outcomes.count(r)
	if !r.accepted {
		return
	}
	byType := s.OutcomesByType[o.Workflow]
	if byType == nil {
		byType = map[string]*OutcomeTotals{}
		s.OutcomesByType[o.Workflow] = byType
	}
	t := byType[o.OutcomeType]
	if t == nil {
		t = &OutcomeTotals{}
		byType[o.OutcomeType] = t
	}
	t.Count += o.Count
	if o.Value != nil {
		if t.Value == nil {
			t.Value = map[string]decimal.Decimal{}
		}
		t.Value[o.Value.Currency] = t.Value[o.Value.Currency].Add(o.Value.Amount)
	}
}

// GoodFailed reports how many good calls and outcomes were not accepted.
func (s *Summary) GoodFailed() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, t := range s.Unconfirmed {
		n += t.Calls
	}
	return n + s.Outcomes.Failed + s.Outcomes.Rejected
}

// totals sums every path and the outcomes.
func (s *Summary) totals() (sent, accepted, rejected, failed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range append([]*PathStats{&s.Outcomes}, mapValues(s.Paths)...) {
		sent += p.Sent
		accepted += p.Accepted
		rejected += p.Rejected
		failed += p.Failed
	}
	return
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// Accepted reports how many usage items the collector accepted on every path.
func (s *Summary) Accepted() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, p := range s.Paths {
		n += p.Accepted
	}
	return n
}

// Print writes the human-readable summary.
func (s *Summary) Print(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(w, "\ntokenmeter loadgen: run %s, seed %d, %d user requests, %d model calls in %s against %s\n",
		s.RunID, s.Seed, s.Requests, s.Planned, s.Elapsed.Round(100*time.Millisecond), s.Target)

	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warn)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\trequests\tretries\tsent\taccepted\trejected\tfailed\t")
	row := func(name string, p *PathStats) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, p.Requests, p.Retries, p.Sent, p.Accepted, p.Rejected, p.Failed)
	}
	for _, p := range AllPaths {
		if ps, ok := s.Paths[p]; ok && (ps.Requests > 0 || ps.Sent > 0) {
			row(string(p), ps)
		}
	}
	row("outcomes", &s.Outcomes)
	tw.Flush()

	var reasons []string
	for _, p := range AllPaths {
		if ps, ok := s.Paths[p]; ok {
			for _, k := range sortedKeys(ps.Reasons) {
				reasons = append(reasons, fmt.Sprintf("  %s: %d × %s", p, ps.Reasons[k], k))
			}
			for _, k := range sortedKeys(ps.Errors) {
				reasons = append(reasons, fmt.Sprintf("  %s: %d × request error: %s", p, ps.Errors[k], k))
			}
		}
	}
	for _, k := range sortedKeys(s.Outcomes.Reasons) {
		reasons = append(reasons, fmt.Sprintf("  outcomes: %d × %s", s.Outcomes.Reasons[k], k))
	}
	for _, k := range sortedKeys(s.Outcomes.Errors) {
		reasons = append(reasons, fmt.Sprintf("  outcomes: %d × request error: %s", s.Outcomes.Errors[k], k))
	}
	if len(reasons) > 0 {
		fmt.Fprintln(w, "\nrejections and errors:")
		fmt.Fprintln(w, strings.Join(reasons, "\n"))
	}

	fmt.Fprintln(w, "\ndeliberately bad calls (not in the expected totals):")
	if len(s.Bad) == 0 {
		fmt.Fprintln(w, "  none sent")
	}
	for _, k := range sortedKeys(s.Bad) {
		b := s.Bad[k]
		fmt.Fprintf(w, "  %s: %d sent\n", k, b.Sent)
		for _, p := range AllPaths {
			bp, ok := b.ByPath[p]
			if !ok {
				continue
			}
			expect, acceptOK := badExpectation(k, p)
			flag := ""
			if (bp.AcceptedAtIngest > 0 && !acceptOK) || (bp.RejectedAtIngest > 0 && acceptOK) {
				flag = "  <- NOT AS EXPECTED"
			}
			fmt.Fprintf(w, "    via %s: %d sent, %d rejected at ingest, %d accepted at ingest, %d failed (%s)%s\n",
				p, bp.Sent, bp.RejectedAtIngest, bp.AcceptedAtIngest, bp.Failed, expect, flag)
		}
	}

	fmt.Fprintln(w, "\nexpected usage from this run (good calls accepted at ingest):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	spendHead, spendCol := "", func(string) string { return "" }
	var allSpend decimal.Decimal
	if s.ExpectedSpend != nil {
		spendHead = "spend " + s.SpendCurrency + "\t"
		spendCol = func(wf string) string {
			if wf == "" {
				return allSpend.StringFixed(2) + "\t"
			}
			allSpend = allSpend.Add(s.ExpectedSpend[wf])
			return s.ExpectedSpend[wf].StringFixed(2) + "\t"
		}
	}
	fmt.Fprintln(tw, "workflow\tcalls\tinput\tcache_read\tcache_write\toutput\treasoning\t"+spendHead)
	var all Totals
	for _, wf := range sortedKeys(s.Expected) {
		t := s.Expected[wf]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", wf, t.Calls, t.InputTokens, t.CacheReadInputTokens,
			t.CacheWriteInputTokens, t.OutputTokens, t.ReasoningTokens, spendCol(wf))
		all.Calls += t.Calls
		all.InputTokens += t.InputTokens
		all.CacheReadInputTokens += t.CacheReadInputTokens
		all.CacheWriteInputTokens += t.CacheWriteInputTokens
		all.OutputTokens += t.OutputTokens
		all.ReasoningTokens += t.ReasoningTokens
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", all.Calls, all.InputTokens, all.CacheReadInputTokens,
		all.CacheWriteInputTokens, all.OutputTokens, all.ReasoningTokens, spendCol(""))
	tw.Flush()
	if s.ExpectedSpend != nil {
		fmt.Fprintf(w, "  spend: effective cost in %s from the pipeline's price catalogue, contracts and FX, rounded for display\n", s.SpendCurrency)
	}
	for _, k := range sortedKeys(s.Unpriced) {
		fmt.Fprintf(w, "  WARNING: %d good calls could not be priced: %s\n", s.Unpriced[k], k)
	}
	var lost int64
	for _, t := range s.Unconfirmed {
		lost += t.Calls
	}
	if lost > 0 {
		fmt.Fprintf(w, "  WARNING: %d good calls were not accepted (failed or rejected); they are not in the totals above\n", lost)
	}

	s.printGateway(w)

	fmt.Fprintln(w, "\noutcomes accepted:")
	if len(s.OutcomesByType) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, wf := range sortedKeys(s.OutcomesByType) {
		for _, typ := range sortedKeys(s.OutcomesByType[wf]) {
			t := s.OutcomesByType[wf][typ]
			var vals []string
			for _, cur := range sortedKeys(t.Value) {
				vals = append(vals, cur+" "+t.Value[cur].StringFixed(2))
			}
			fmt.Fprintf(w, "  %s %s: %d (value %s)\n", wf, typ, t.Count, strings.Join(vals, ", "))
		}
	}
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
