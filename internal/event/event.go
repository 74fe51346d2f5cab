// Package event holds tokenmeter's canonical event model: the shapes that travel
// on the Kafka topics between roles, as documented in DESIGN.md and published as
// JSON Schemas in schemas/.
//
// Every topic carries canonical JSON. Money is shopspring/decimal, which
// marshals as a JSON string ("0.000002500000") so no reader parses it as a float.
package event

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/money"
)

// Topic names used between roles. They can be prefixed in config (kafka.topic_prefix)
// but their suffixes are fixed.
const (
	TopicUsage    = "tokenmeter.usage.v1"
	TopicPriced   = "tokenmeter.priced.v1"
	TopicOutcomes = "tokenmeter.outcomes.v1"
	TopicDLQ      = "tokenmeter.dlq.v1"
	TopicAlerts   = "tokenmeter.alerts.v1"
)

// Service tiers as providers bill them.
const (
	ServiceTierStandard = "standard"
	ServiceTierBatch    = "batch"
	ServiceTierFlex     = "flex"
	ServiceTierPriority = "priority"
)

// Usage completeness: how much of a call's usage its source reported.
// Anything but complete means the priced cost is not exact: an upper bound
// when cache tokens were not reported (they were priced at the uncached input
// rate), unknown when no usage was reported at all.
const (
	// UsageComplete: every token class the provider bills was reported.
	// An event without usage_completeness is complete.
	UsageComplete = "complete"
	// UsageCacheUnreported: the source is known not to report cache reads
	// or writes, so cached input was counted (and priced) as uncached: the
	// cost is an upper bound.
	UsageCacheUnreported = "cache_unreported"
	// UsageCacheOmitted: the source dropped the call's cache reads and
	// writes from every count it sent (input_tokens lacks them): the cost is
	// a lower bound.
	UsageCacheOmitted = "cache_omitted"
	// UsageOutputOvercounted: the source is known to over-count output
	// tokens for such a call (e.g. adding a stream's first and final
	// counts): the cost is an upper bound.
	UsageOutputOvercounted = "output_overcounted"
	// UsageMissing: a model call with no usage at all (for example a stream
	// read without usage). It is counted as an unmetered call; its cost is
	// unknown, not zero.
	UsageMissing = "usage_missing"
)

// UsageCompletenessValues lists the valid usage_completeness values.
var UsageCompletenessValues = []string{UsageComplete, UsageCacheUnreported, UsageCacheOmitted, UsageOutputOvercounted, UsageMissing}

// Unattributed is the explicit value of an attribution field that no rule and
// no input explained, so its share of spend stays visible.
const Unattributed = "unattributed"

// Money is an exact amount in a currency (ISO 4217 code).
type Money struct {
	Amount   decimal.Decimal `json:"amount"`
	Currency string          `json:"currency"`
}

// Units are non-token billable quantities of one call.
type Units struct {
	Images       int64 `json:"images,omitempty"`
	AudioSeconds int64 `json:"audio_seconds,omitempty"`
	Requests     int64 `json:"requests,omitempty"`
	ToolCalls    int64 `json:"tool_calls,omitempty"`
	WebSearches  int64 `json:"web_searches,omitempty"`
}

// IsZero reports whether no non-token unit was used.
func (u Units) IsZero() bool { return u == Units{} }

// UsageEvent v1 is one model call (or one tool/agent step that costs money).
//
// Token counting follows the OpenTelemetry GenAI conventions: InputTokens is the
// total and includes CacheReadInputTokens and CacheWriteInputTokens;
// OutputTokens is the total and includes ReasoningTokens.
// CacheWrite1hInputTokens is the part of CacheWriteInputTokens written with a
// one-hour TTL (Anthropic bills 5-minute and 1-hour writes differently).
type UsageEvent struct {
	EventID   string    `json:"event_id"`
	EventTime time.Time `json:"event_time"`
	Tenant    string    `json:"tenant"`

	Provider    string `json:"provider"`
	Model       string `json:"model"`
	Operation   string `json:"operation,omitempty"`
	ServiceTier string `json:"service_tier,omitempty"`
	Region      string `json:"region,omitempty"`

	InputTokens             int64 `json:"input_tokens"`
	CacheReadInputTokens    int64 `json:"cache_read_input_tokens,omitempty"`
	CacheWriteInputTokens   int64 `json:"cache_write_input_tokens,omitempty"`
	CacheWrite1hInputTokens int64 `json:"cache_write_1h_input_tokens,omitempty"`
	OutputTokens            int64 `json:"output_tokens"`
	ReasoningTokens         int64 `json:"reasoning_tokens,omitempty"`
	Units                   Units `json:"units,omitempty"`
	// UsageCompleteness is UsageComplete (or ""), UsageCacheUnreported,
	// UsageCacheOmitted, UsageOutputOvercounted or UsageMissing; see those
	// constants.
	UsageCompleteness string `json:"usage_completeness,omitempty"`

	Workflow       string            `json:"workflow,omitempty"`
	PromptTemplate string            `json:"prompt_template,omitempty"`
	PromptVersion  string            `json:"prompt_version,omitempty"`
	UserID         string            `json:"user_id,omitempty"`
	Team           string            `json:"team,omitempty"`
	Application    string            `json:"application,omitempty"`
	Environment    string            `json:"environment,omitempty"`
	AgentName      string            `json:"agent_name,omitempty"`
	TraceID        string            `json:"trace_id,omitempty"`
	SpanID         string            `json:"span_id,omitempty"`
	ConversationID string            `json:"conversation_id,omitempty"`
	SessionID      string            `json:"session_id,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`

	// ReportedCost is what the provider or SDK said the call cost; kept beside
	// tokenmeter's own price, never used instead of it.
	ReportedCost *Money `json:"reported_cost,omitempty"`
}

// CostIsUpperBound reports whether the usage the event carries can only
// overstate the call's cost (cache tokens priced as uncached input).
func (e *UsageEvent) CostIsUpperBound() bool {
	return e.UsageCompleteness == UsageCacheUnreported || e.UsageCompleteness == UsageOutputOvercounted
}

// CostIsLowerBound reports whether the usage the event carries can only
// understate the call's cost (cache tokens missing from the counts).
func (e *UsageEvent) CostIsLowerBound() bool { return e.UsageCompleteness == UsageCacheOmitted }

// Unmetered reports whether the event is a model call whose usage is unknown.
func (e *UsageEvent) Unmetered() bool { return e.UsageCompleteness == UsageMissing }

// Key is the Kafka record key: tenant/workflow, so one workflow's events are
// ordered on one partition and budget state stays partition-local.
func (e *UsageEvent) Key() []byte { return RecordKey(e.Tenant, e.Workflow) }

// RecordKey builds the tenant/workflow record key used on usage, priced and outcome topics.
func RecordKey(tenant, workflow string) []byte {
	b := make([]byte, 0, len(tenant)+1+len(workflow))
	b = append(b, tenant...)
	b = append(b, '/')
	return append(b, workflow...)
}

// OutcomeEvent v1 is one business outcome (ticket resolved, contract reviewed).
type OutcomeEvent struct {
	OutcomeID      string            `json:"outcome_id"`
	EventTime      time.Time         `json:"event_time"`
	Tenant         string            `json:"tenant"`
	Workflow       string            `json:"workflow"`
	OutcomeType    string            `json:"outcome_type"`
	Count          int64             `json:"count"`
	Value          *Money            `json:"value,omitempty"`
	TraceID        string            `json:"trace_id,omitempty"`
	ConversationID string            `json:"conversation_id,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`
}

// Key is the Kafka record key (tenant/workflow).
func (o *OutcomeEvent) Key() []byte { return RecordKey(o.Tenant, o.Workflow) }

// PricedUsageEvent is a UsageEvent with its price, costs and attribution resolved.
//
// Costs are exact decimals. The per-class costs (Cost*) are effective costs in
// the pricing currency and add up exactly to EffectiveCost. Quantities per
// class are the disjoint parts the classes are priced on:
//
//	UncachedInputTokens = InputTokens - CacheReadInputTokens - CacheWriteInputTokens
//	NonReasoningOutput  = OutputTokens - ReasoningTokens
//
// Column names follow FOCUS where one exists (ListCost, ContractedCost,
// EffectiveCost, PricingCurrency, BillingCurrency).
type PricedUsageEvent struct {
	UsageEvent

	CostCentre string `json:"cost_centre,omitempty"`
	// TaskID groups the calls of one agentic task: trace_id, else conversation_id, else event_id.
	TaskID string `json:"task_id"`
	// AttributionRule names the rule that set the workflow ("" when it came with the event).
	AttributionRule string `json:"attribution_rule,omitempty"`

	PriceID     string `json:"price_id"`     // catalogue row (provider/model/tier@valid_from)
	PriceSource string `json:"price_source"` // catalogue version/source tag
	PricingTier string `json:"pricing_tier"` // e.g. standard, batch, priority, standard_long_context
	ContractID  string `json:"contract_id,omitempty"`

	UncachedInputTokens   int64 `json:"uncached_input_tokens"`
	NonReasoningOutTokens int64 `json:"non_reasoning_output_tokens"`

	// Every amount below is rounded once, half to even, to money.Scale (the
	// storage scale) from the exact product: what Kafka carries is what
	// ClickHouse and the budget ledger hold.
	CostInput      money.Amount `json:"cost_input"`
	CostCacheRead  money.Amount `json:"cost_cache_read"`
	CostCacheWrite money.Amount `json:"cost_cache_write"`
	CostOutput     money.Amount `json:"cost_output"`
	CostReasoning  money.Amount `json:"cost_reasoning"`
	CostUnits      money.Amount `json:"cost_units"`

	PricingCurrency string       `json:"pricing_currency"` // USD
	ListCost        money.Amount `json:"list_cost"`
	ContractedCost  money.Amount `json:"contracted_cost"`
	EffectiveCost   money.Amount `json:"effective_cost"`
	// CacheSavings is what cached reads saved against the uncached input price, at list price.
	CacheSavings money.Amount `json:"cache_savings"`

	BillingCurrency string       `json:"billing_currency"` // tenant's reporting currency, e.g. HKD
	FXRate          money.Amount `json:"fx_rate"`          // 1 PricingCurrency = FXRate BillingCurrency (rounded to money.Scale; billed costs use the exact rate)
	FXDate          string       `json:"fx_date"`          // YYYY-MM-DD of the rate used
	// FXStale: the rate used is older than pricing.fx_max_age before the
	// event (the rates file was not kept up to date).
	FXStale              bool         `json:"fx_stale,omitempty"`
	BilledListCost       money.Amount `json:"billed_list_cost"`
	BilledContractedCost money.Amount `json:"billed_contracted_cost"`
	BilledEffectiveCost  money.Amount `json:"billed_effective_cost"`
	BilledCacheSavings   money.Amount `json:"billed_cache_savings"`

	// LocalDate and TimeZone are event_time's calendar day in the tenant's
	// reporting time zone and that zone's name, set by the processor from
	// its tenant config, so every sink stores the same day whatever its own
	// config says.
	LocalDate string `json:"local_date"` // YYYY-MM-DD
	TimeZone  string `json:"time_zone"`  // IANA name, e.g. Asia/Hong_Kong

	PricedAt time.Time `json:"priced_at"`
}

// DLQRecord is the value written to tokenmeter.dlq.v1 for anything rejected after
// (or instead of) an HTTP answer. Original holds the exact bytes that were
// rejected (base64 in JSON), so a fixed pipeline can replay them.
type DLQRecord struct {
	ID          string    `json:"id"`     // stable id of the rejection: source topic/partition/offset or event id
	Stage       string    `json:"stage"`  // collector | processor | sink | budget
	Reason      string    `json:"reason"` // machine-readable, e.g. unknown_model, invalid_field, fx_missing, duplicate_conflict
	Detail      string    `json:"detail"` // human-readable, with the field path when there is one
	Tenant      string    `json:"tenant,omitempty"`
	EventID     string    `json:"event_id,omitempty"`
	Provider    string    `json:"provider,omitempty"`
	Model       string    `json:"model,omitempty"`
	SourceTopic string    `json:"source_topic,omitempty"`
	Partition   int32     `json:"partition"`
	Offset      int64     `json:"offset"`
	EventTime   time.Time `json:"event_time,omitempty"`
	RejectedAt  time.Time `json:"rejected_at"`
	Original    []byte    `json:"original"`
}

// Alert is a budget threshold crossing (or projected overrun) on tokenmeter.alerts.v1.
type Alert struct {
	AlertID     string          `json:"alert_id"` // budget/period/kind/threshold: the idempotency key
	Tenant      string          `json:"tenant"`
	BudgetID    string          `json:"budget_id"`
	Period      string          `json:"period"`    // e.g. 2026-11 or 2026-Q4
	Kind        string          `json:"kind"`      // threshold | projected_overrun
	Threshold   decimal.Decimal `json:"threshold"` // percent, e.g. 80
	Spend       decimal.Decimal `json:"spend"`
	Amount      decimal.Decimal `json:"amount"`
	Currency    string          `json:"currency"`
	Mode        string          `json:"mode"` // alert | enforce
	Top         []Contributor   `json:"top,omitempty"`
	TriggeredAt time.Time       `json:"triggered_at"`
	EventTime   time.Time       `json:"event_time"`
}

// Contributor is one workflow or model behind a budget's spend.
type Contributor struct {
	Kind  string          `json:"kind"` // workflow | model
	Name  string          `json:"name"`
	Spend decimal.Decimal `json:"spend"`
}
