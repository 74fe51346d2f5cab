package sink

import (
	"fmt"
	"time"

	"github.com/ClickHouse/ch-go/proto"

	"github.com/tokenmeter/tokenmeter/internal/contract"
	"github.com/tokenmeter/tokenmeter/internal/contract/pricedv1"
	"github.com/tokenmeter/tokenmeter/internal/money"
)

// pricedBlock is a priced_usage insert block in ClickHouse's native
// columnar form (ch-go's proto columns): a decoded priced.v1 record is
// appended column by column, amounts as their Decimal128 coefficient
// (money.Amount's, no math/big), dates as day numbers. Its Input lists the
// columns in pricedTable.columns order plus the kafka_* ones
// (TestPricedBlockColumnsAreTheTables checks). bench/RESULTS.md compares
// it with clickhouse-go's row and column batches.
type pricedBlock struct {
	str   map[string]*proto.ColStr
	lc    map[string]*proto.ColLowCardinality[string]
	u64   map[string]*proto.ColUInt64
	dec   map[string]*proto.ColDecimal128
	arr   map[string]*proto.ColArr[string]
	date  map[string]*proto.ColDate
	dt    map[string]*proto.ColDateTime64
	ms    proto.ColUInt16
	stale proto.ColUInt8 // fx_stale
	part  proto.ColInt32
	off   proto.ColInt64
	input proto.Input
	rows  int
}

// pricedColumnType is the ClickHouse type of each priced_usage column as
// the block writes it (the DDL's; TestPricedColumnsFollowContractAndDDL
// checks the money ones).
func pricedColumnType(name string) string {
	switch name {
	case "event_id", "user_id", "trace_id", "span_id", "conversation_id", "session_id", "task_id":
		return "String"
	case "event_time", "priced_at":
		return "DateTime64(3, 'UTC')"
	case "event_time_ms":
		return "UInt16"
	case "fx_stale":
		return "UInt8"
	case "local_date", "fx_date":
		return "Date"
	case "attribute_keys", "attribute_values":
		return "Array(String)"
	case "input_tokens", "cache_read_input_tokens", "cache_write_input_tokens", "cache_write_1h_input_tokens",
		"uncached_input_tokens", "output_tokens", "reasoning_tokens", "non_reasoning_output_tokens",
		"images", "audio_seconds", "requests", "tool_calls", "web_searches":
		return "UInt64"
	case "cost_input", "cost_cache_read", "cost_cache_write", "cost_output", "cost_reasoning", "cost_units",
		"list_cost", "contracted_cost", "effective_cost", "cache_savings", "fx_rate",
		"billed_list_cost", "billed_contracted_cost", "billed_effective_cost", "billed_cache_savings", "reported_cost":
		return fmt.Sprintf("Decimal(38, %d)", money.Scale)
	case "kafka_topic":
		return "LowCardinality(String)"
	case "kafka_partition":
		return "Int32"
	case "kafka_offset":
		return "Int64"
	}
	return "LowCardinality(String)"
}

func newPricedBlock() *pricedBlock {
	b := &pricedBlock{
		str: map[string]*proto.ColStr{}, lc: map[string]*proto.ColLowCardinality[string]{}, u64: map[string]*proto.ColUInt64{},
		dec: map[string]*proto.ColDecimal128{}, arr: map[string]*proto.ColArr[string]{}, date: map[string]*proto.ColDate{},
		dt: map[string]*proto.ColDateTime64{},
	}
	for _, name := range append(append([]string{}, pricedTable.columns...), kafkaColumns...) {
		var col proto.ColInput
		switch t := pricedColumnType(name); {
		case name == "event_time_ms":
			col = &b.ms
		case name == "fx_stale":
			col = &b.stale
		case name == "kafka_partition":
			col = &b.part
		case name == "kafka_offset":
			col = &b.off
		case t == "String":
			c := new(proto.ColStr)
			b.str[name], col = c, c
		case t == "LowCardinality(String)":
			c := new(proto.ColStr).LowCardinality()
			b.lc[name], col = c, c
		case t == "UInt64":
			c := new(proto.ColUInt64)
			b.u64[name], col = c, c
		case t == "Date":
			c := new(proto.ColDate)
			b.date[name], col = c, c
		case t == "DateTime64(3, 'UTC')":
			c := new(proto.ColDateTime64).WithPrecision(proto.PrecisionMilli).WithLocation(time.UTC)
			b.dt[name], col = c, c
		case t == "Array(String)":
			c := new(proto.ColStr).Array()
			b.arr[name], col = c, c
		default: // Decimal(38, 12)
			c := new(proto.ColDecimal128)
			b.dec[name], col = c, proto.Alias(c, proto.ColumnType(t))
		}
		b.input = append(b.input, proto.InputColumn{Name: name, Data: col})
	}
	return b
}

// Reset empties the block for reuse (its column buffers are kept).
func (b *pricedBlock) Reset() {
	b.input.Reset()
	b.rows = 0
}

// Input is the block for ch-go's Query.Input.
func (b *pricedBlock) Input() proto.Input { return b.input }

// append adds one decoded record (from topic/partition/offset). The caller
// has validated m (decodePriced's checks).
func (b *pricedBlock) append(m *pricedv1.PricedUsage, topic string, partition int32, offset int64) {
	s := func(name, v string) { b.str[name].Append(v) }
	l := func(name, v string) { b.lc[name].Append(v) }
	n := func(name string, v int64) { b.u64[name].Append(uint64(v)) }
	d := func(name string, v *pricedv1.Money) {
		hi, lo := contract.Amount(v).Coef128()
		b.dec[name].Append(proto.Decimal128{Low: lo, High: uint64(hi)})
	}
	day := func(name string, v int32) { *b.date[name] = append(*b.date[name], proto.Date(v)) }
	ts := clampTime(time.UnixMilli(m.EventTime))
	s("event_id", m.EventId)
	b.dt["event_time"].Append(ts)
	b.ms.Append(uint16(ts.Nanosecond() / 1e6))
	day("local_date", m.LocalDate)
	l("time_zone", m.TimeZone)
	l("tenant", m.Tenant)
	l("provider", m.Provider)
	l("model", m.Model)
	l("operation", m.Operation)
	l("service_tier", m.ServiceTier)
	l("region", m.Region)
	n("input_tokens", m.InputTokens)
	n("cache_read_input_tokens", m.CacheReadInputTokens)
	n("cache_write_input_tokens", m.CacheWriteInputTokens)
	n("cache_write_1h_input_tokens", m.CacheWrite_1HInputTokens)
	n("uncached_input_tokens", m.UncachedInputTokens)
	n("output_tokens", m.OutputTokens)
	n("reasoning_tokens", m.ReasoningTokens)
	n("non_reasoning_output_tokens", m.NonReasoningOutputTokens)
	n("images", m.Images)
	n("audio_seconds", m.AudioSeconds)
	n("requests", m.Requests)
	n("tool_calls", m.ToolCalls)
	n("web_searches", m.WebSearches)
	l("workflow", m.Workflow)
	l("prompt_template", m.PromptTemplate)
	l("prompt_version", m.PromptVersion)
	s("user_id", m.UserId)
	l("team", m.Team)
	l("cost_centre", m.CostCentre)
	l("application", m.Application)
	l("environment", m.Environment)
	l("agent_name", m.AgentName)
	s("trace_id", m.TraceId)
	s("span_id", m.SpanId)
	s("conversation_id", m.ConversationId)
	s("session_id", m.SessionId)
	s("task_id", m.TaskId)
	l("attribution_rule", m.AttributionRule)
	b.arr["attribute_keys"].Append(m.AttributeKeys)
	b.arr["attribute_values"].Append(m.AttributeValues)
	l("price_id", m.PriceId)
	l("price_source", m.PriceSource)
	l("pricing_tier", m.PricingTier)
	l("contract_id", m.ContractId)
	d("cost_input", m.CostInput)
	d("cost_cache_read", m.CostCacheRead)
	d("cost_cache_write", m.CostCacheWrite)
	d("cost_output", m.CostOutput)
	d("cost_reasoning", m.CostReasoning)
	d("cost_units", m.CostUnits)
	l("pricing_currency", m.PricingCurrency)
	d("list_cost", m.ListCost)
	d("contracted_cost", m.ContractedCost)
	d("effective_cost", m.EffectiveCost)
	d("cache_savings", m.CacheSavings)
	l("billing_currency", m.BillingCurrency)
	d("fx_rate", m.FxRate)
	day("fx_date", m.FxDate)
	d("billed_list_cost", m.BilledListCost)
	d("billed_contracted_cost", m.BilledContractedCost)
	d("billed_effective_cost", m.BilledEffectiveCost)
	d("billed_cache_savings", m.BilledCacheSavings)
	d("reported_cost", m.ReportedCost)
	l("reported_cost_currency", m.ReportedCostCurrency)
	b.dt["priced_at"].Append(clampTime(time.UnixMilli(m.PricedAt)))
	l("usage_completeness", m.UsageCompleteness)
	b.stale.Append(boolUInt8(m.FxStale))
	l("kafka_topic", topic)
	b.part.Append(partition)
	b.off.Append(offset)
	b.rows++
}
