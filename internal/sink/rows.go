package sink

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/tokenmeter/tokenmeter/internal/contract"
	"github.com/tokenmeter/tokenmeter/internal/contract/pricedv1"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// table is one ClickHouse table the sink writes and how a Kafka record
// becomes one of its rows. Every table ends with kafka_topic,
// kafka_partition, kafka_offset (added by the sink, not by decode).
type table struct {
	name    string
	columns []string
	// decode turns a record value into the row's leading values (all
	// columns but the three kafka_* ones) and a split key: rows with
	// different keys land in different parts of some table (its PARTITION BY
	// or a rollup's), so one insert never carries two keys (see flush).
	decode func(z *zoner, value []byte) (row []any, split int64, err error)
}

var kafkaColumns = []string{"kafka_topic", "kafka_partition", "kafka_offset"}

// zoner finds a tenant's time zone and reporting currency.
type zoner struct{ tenants *tenant.Registry }

func (z *zoner) zone(tenantID string) *time.Location {
	if z.tenants != nil {
		if t, ok := z.tenants.Lookup(tenantID); ok && t.Location != nil {
			return t.Location
		}
	}
	return time.UTC
}

func (z *zoner) currency(tenantID string) string {
	if z.tenants != nil {
		if t, ok := z.tenants.Lookup(tenantID); ok {
			return t.ReportingCurrency
		}
	}
	return ""
}

// localDate is t's calendar day in loc, as the driver writes Date values
// (the day of a time in its own location).
func localDate(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// monthSplit keys a row by its UTC month (raw and hourly/minute partitions)
// and its local month (daily rollup partitions).
func monthSplit(t time.Time, local time.Time) int64 {
	u := t.UTC()
	return int64(u.Year()*100+int(u.Month()))*1_000_000 + int64(local.Year()*100+int(local.Month()))
}

func attrs(m map[string]string) (keys, values []string) {
	keys = make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	values = make([]string, len(keys))
	for i, k := range keys {
		values[i] = m[k]
	}
	return keys, values
}

func nonNeg(n int64, field string) (uint64, error) {
	if n < 0 {
		return 0, fmt.Errorf("%s: %d is negative", field, n)
	}
	return uint64(n), nil
}

// fxDate parses YYYY-MM-DD; empty is the zero date.
func fxDate(s string) (time.Time, error) {
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	return time.Parse("2006-01-02", s)
}

// clampTime keeps a time inside DateTime's range (1970..2105), so a bad
// clock cannot make an insert fail forever.
func clampTime(t time.Time) time.Time {
	if t.Before(time.Unix(0, 0)) {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}

// pricedTable's columns are the priced.v1 contract's fields in their
// order (schemas/proto), event_time filling two (event_time, event_time_ms);
// TestPricedColumnsFollowContractAndDDL checks this list against the
// contract's descriptor and against the DDL in schemas/clickhouse.
var pricedTable = &table{
	name: "priced_usage",
	columns: []string{
		"event_id", "event_time", "event_time_ms", "local_date", "time_zone", "tenant",
		"provider", "model", "operation", "service_tier", "region",
		"input_tokens", "cache_read_input_tokens", "cache_write_input_tokens", "cache_write_1h_input_tokens",
		"uncached_input_tokens", "output_tokens", "reasoning_tokens", "non_reasoning_output_tokens",
		"images", "audio_seconds", "requests", "tool_calls", "web_searches",
		"workflow", "prompt_template", "prompt_version", "user_id", "team", "cost_centre", "application",
		"environment", "agent_name", "trace_id", "span_id", "conversation_id", "session_id", "task_id",
		"attribution_rule", "attribute_keys", "attribute_values",
		"price_id", "price_source", "pricing_tier", "contract_id",
		"cost_input", "cost_cache_read", "cost_cache_write", "cost_output", "cost_reasoning", "cost_units",
		"pricing_currency", "list_cost", "contracted_cost", "effective_cost", "cache_savings",
		"billing_currency", "fx_rate", "fx_date", "billed_list_cost", "billed_contracted_cost",
		"billed_effective_cost", "billed_cache_savings",
		"reported_cost", "reported_cost_currency", "priced_at",
		"usage_completeness", "fx_stale",
	},
	decode: decodePriced,
}

// decodePriced turns a priced.v1 record into its priced_usage row. What is
// stored is what the record says: the local date, zone and billing currency
// come from the processor (issue 9), never from this sink's config. Only a
// record written before the binary contract (JSON) lacks them; for those
// the sink's tenant config fills local_date and time_zone, as it did then.
func decodePriced(z *zoner, value []byte) ([]any, int64, error) {
	var m pricedv1.PricedUsage
	if contract.IsLegacyJSON(value) {
		var e event.PricedUsageEvent
		if err := contract.DecodePriced(value, &e); err != nil {
			return nil, 0, err
		}
		if e.TimeZone == "" {
			loc := z.zone(e.Tenant)
			e.LocalDate, e.TimeZone = localDate(clampTime(e.EventTime), loc).Format(time.DateOnly), loc.String()
		}
		var enc contract.Encoder
		b, err := enc.AppendPriced(nil, &e)
		if err != nil {
			return nil, 0, fmt.Errorf("priced usage event (JSON): %w", err)
		}
		value = b
	}
	if err := proto.Unmarshal(value, &m); err != nil {
		return nil, 0, fmt.Errorf("priced usage event: %w", err)
	}
	if m.EventId == "" || m.Tenant == "" {
		return nil, 0, errors.New("priced usage event: event_id and tenant are required")
	}
	var errs []error
	u := func(n int64, f string) uint64 {
		v, err := nonNeg(n, f)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	if len(m.AttributeKeys) != len(m.AttributeValues) {
		errs = append(errs, fmt.Errorf("attribute_keys: %d keys for %d values", len(m.AttributeKeys), len(m.AttributeValues)))
	}
	dec := func(v *pricedv1.Money) decimal.Decimal {
		a := contract.Amount(v)
		if !a.InRange() {
			errs = append(errs, fmt.Errorf("an amount (%s) is beyond Decimal(38, 12)", a))
			return decimal.Zero
		}
		return a.Decimal()
	}
	ts := clampTime(time.UnixMilli(m.EventTime))
	ld := day(m.LocalDate)
	reportedCur := m.ReportedCostCurrency
	// Amounts go to the driver as decimals: clickhouse-go converts every
	// Decimal through math/big whatever it is given (ch-go's ColDecimal128
	// would take money.Amount's coefficient as is; see bench/RESULTS.md).
	row := []any{
		m.EventId, ts, uint16(ts.Nanosecond() / 1e6), ld, m.TimeZone, m.Tenant,
		m.Provider, m.Model, m.Operation, m.ServiceTier, m.Region,
		u(m.InputTokens, "input_tokens"), u(m.CacheReadInputTokens, "cache_read_input_tokens"),
		u(m.CacheWriteInputTokens, "cache_write_input_tokens"), u(m.CacheWrite_1HInputTokens, "cache_write_1h_input_tokens"),
		u(m.UncachedInputTokens, "uncached_input_tokens"), u(m.OutputTokens, "output_tokens"),
		u(m.ReasoningTokens, "reasoning_tokens"), u(m.NonReasoningOutputTokens, "non_reasoning_output_tokens"),
		u(m.Images, "images"), u(m.AudioSeconds, "audio_seconds"), u(m.Requests, "requests"),
		u(m.ToolCalls, "tool_calls"), u(m.WebSearches, "web_searches"),
		m.Workflow, m.PromptTemplate, m.PromptVersion, m.UserId, m.Team, m.CostCentre, m.Application,
		m.Environment, m.AgentName, m.TraceId, m.SpanId, m.ConversationId, m.SessionId, m.TaskId,
		m.AttributionRule, nonNil(m.AttributeKeys), nonNil(m.AttributeValues),
		m.PriceId, m.PriceSource, m.PricingTier, m.ContractId,
		dec(m.CostInput), dec(m.CostCacheRead), dec(m.CostCacheWrite), dec(m.CostOutput), dec(m.CostReasoning), dec(m.CostUnits),
		m.PricingCurrency, dec(m.ListCost), dec(m.ContractedCost), dec(m.EffectiveCost), dec(m.CacheSavings),
		m.BillingCurrency, dec(m.FxRate), day(m.FxDate), dec(m.BilledListCost), dec(m.BilledContractedCost),
		dec(m.BilledEffectiveCost), dec(m.BilledCacheSavings),
		dec(m.ReportedCost), reportedCur, clampTime(time.UnixMilli(m.PricedAt)),
		m.UsageCompleteness, boolUInt8(m.FxStale),
	}
	if len(errs) > 0 {
		return nil, 0, errors.Join(errs...)
	}
	return row, monthSplit(ts, ld), nil
}

// day is days since 1970-01-01 as the driver writes Date values.
func day(d int32) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

var outcomesTable = &table{
	name: "outcomes",
	columns: []string{
		"outcome_id", "event_time", "event_time_ms", "local_date", "time_zone", "tenant", "workflow",
		"outcome_type", "count", "value_amount", "value_currency", "billing_currency",
		"trace_id", "conversation_id", "attribute_keys", "attribute_values",
	},
	decode: decodeOutcome,
}

func decodeOutcome(z *zoner, value []byte) ([]any, int64, error) {
	var o event.OutcomeEvent
	if err := json.Unmarshal(value, &o); err != nil {
		return nil, 0, fmt.Errorf("outcome event: %w", err)
	}
	if o.OutcomeID == "" || o.Tenant == "" {
		return nil, 0, errors.New("outcome event: outcome_id and tenant are required")
	}
	n, err := nonNeg(o.Count, "count")
	if err != nil {
		return nil, 0, err
	}
	loc := z.zone(o.Tenant)
	ts := clampTime(o.EventTime)
	ld := localDate(ts, loc)
	amount, cur := decimal.Zero, ""
	if o.Value != nil {
		amount, cur = o.Value.Amount, o.Value.Currency
	}
	keys, values := attrs(o.Attributes)
	return []any{
		o.OutcomeID, ts, uint16(ts.Nanosecond() / 1e6), ld, loc.String(), o.Tenant, o.Workflow,
		o.OutcomeType, n, amount, cur, z.currency(o.Tenant),
		o.TraceID, o.ConversationID, keys, values,
	}, monthSplit(ts, ld), nil
}

var dlqTable = &table{
	name: "dlq",
	columns: []string{
		"id", "stage", "reason", "detail", "tenant", "event_id", "provider", "model",
		"source_topic", "source_partition", "source_offset", "event_time", "rejected_at", "original",
	},
	decode: decodeDLQ,
}

func decodeDLQ(_ *zoner, value []byte) ([]any, int64, error) {
	var d event.DLQRecord
	if err := json.Unmarshal(value, &d); err != nil {
		return nil, 0, fmt.Errorf("dlq record: %w", err)
	}
	return dlqRow(d), monthKey(d.RejectedAt), nil
}

func dlqRow(d event.DLQRecord) []any {
	return []any{
		d.ID, d.Stage, d.Reason, d.Detail, d.Tenant, d.EventID, d.Provider, d.Model,
		d.SourceTopic, d.Partition, d.Offset, clampTime(d.EventTime), clampTime(d.RejectedAt), string(d.Original),
	}
}

func monthKey(t time.Time) int64 {
	u := clampTime(t)
	return int64(u.Year()*100 + int(u.Month()))
}

// sinkDLQ is the dlq row for a record the sink cannot decode: stored in the
// dlq table under the record's own topic/partition/offset, so it counts as
// stored for that partition and is never retried or lost.
func sinkDLQ(r *kgo.Record, err error, now time.Time) ([]any, int64) {
	reason := "undecodable"
	var rowErr *RowError
	if errors.As(err, &rowErr) {
		reason = "unstorable"
	}
	d := event.DLQRecord{
		ID:          fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset),
		Stage:       "sink",
		Reason:      reason,
		Detail:      err.Error(),
		SourceTopic: r.Topic,
		Partition:   r.Partition,
		Offset:      r.Offset,
		EventTime:   r.Timestamp,
		RejectedAt:  now,
		Original:    r.Value,
	}
	return dlqRow(d), monthKey(now)
}

var alertsTable = &table{
	name: "alerts",
	columns: []string{
		"alert_id", "tenant", "budget_id", "period", "kind", "threshold", "spend", "amount", "currency", "mode",
		"top_kinds", "top_names", "top_spend", "triggered_at", "event_time",
	},
	decode: decodeAlert,
}

func decodeAlert(_ *zoner, value []byte) ([]any, int64, error) {
	var a event.Alert
	if err := json.Unmarshal(value, &a); err != nil {
		return nil, 0, fmt.Errorf("alert: %w", err)
	}
	if a.AlertID == "" {
		return nil, 0, errors.New("alert: alert_id is required")
	}
	kinds := make([]string, len(a.Top))
	names := make([]string, len(a.Top))
	spend := make([]decimal.Decimal, len(a.Top))
	for i, c := range a.Top {
		kinds[i], names[i], spend[i] = c.Kind, c.Name, c.Spend
	}
	return []any{
		a.AlertID, a.Tenant, a.BudgetID, a.Period, a.Kind, a.Threshold, a.Spend, a.Amount, a.Currency, a.Mode,
		kinds, names, spend, clampTime(a.TriggeredAt), clampTime(a.EventTime),
	}, 0, nil
}

func boolUInt8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
