// Package contract turns the in-process event model (internal/event) into
// the priced.v1 wire contract (schemas/proto, generated into pricedv1) and
// back. It is the only place that knows both; the processor encodes with
// it, the budget role and the debug tools decode with it, and the sink
// reads pricedv1 directly into columns.
package contract

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tokenmeter/tokenmeter/internal/contract/pricedv1"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/money"
)

// Money is a as the contract carries it (nil for zero, so zero costs take
// no bytes).
func Money(a money.Amount, into *pricedv1.Money) *pricedv1.Money {
	if a.IsZero() {
		return nil
	}
	hi, lo := a.Coef128()
	into.Lo, into.Hi = int64(lo), hi
	return into
}

// Amount is the money.Amount of m (zero for nil).
func Amount(m *pricedv1.Money) money.Amount {
	if m == nil {
		return money.Amount{}
	}
	return money.FromCoef128(m.Hi, uint64(m.Lo))
}

// Encoder encodes priced events; it reuses its scratch message, so one
// Encoder belongs to one goroutine.
type Encoder struct {
	msg   pricedv1.PricedUsage
	money [15]pricedv1.Money
	keys  []string
	vals  []string
}

// AppendPriced appends the priced.v1 value of p to b.
func (e *Encoder) AppendPriced(b []byte, p *event.PricedUsageEvent) ([]byte, error) {
	ld, err := Days(p.LocalDate)
	if err != nil {
		return b, fmt.Errorf("local_date: %w", err)
	}
	fxd, err := Days(p.FXDate)
	if err != nil {
		return b, fmt.Errorf("fx_date: %w", err)
	}
	u := &p.UsageEvent
	e.keys, e.vals = e.keys[:0], e.vals[:0]
	for k := range u.Attributes {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys)
	for _, k := range e.keys {
		e.vals = append(e.vals, u.Attributes[k])
	}
	m := &e.money
	e.msg = pricedv1.PricedUsage{
		EventId: u.EventID, EventTime: u.EventTime.UnixMilli(), LocalDate: ld, TimeZone: p.TimeZone, Tenant: u.Tenant,
		Provider: u.Provider, Model: u.Model, Operation: u.Operation, ServiceTier: u.ServiceTier, Region: u.Region,
		InputTokens: u.InputTokens, CacheReadInputTokens: u.CacheReadInputTokens, CacheWriteInputTokens: u.CacheWriteInputTokens,
		CacheWrite_1HInputTokens: u.CacheWrite1hInputTokens, UncachedInputTokens: p.UncachedInputTokens,
		OutputTokens: u.OutputTokens, ReasoningTokens: u.ReasoningTokens, NonReasoningOutputTokens: p.NonReasoningOutTokens,
		Images: u.Units.Images, AudioSeconds: u.Units.AudioSeconds, Requests: u.Units.Requests, ToolCalls: u.Units.ToolCalls,
		WebSearches: u.Units.WebSearches,
		Workflow:    u.Workflow, PromptTemplate: u.PromptTemplate, PromptVersion: u.PromptVersion, UserId: u.UserID, Team: u.Team,
		CostCentre: p.CostCentre, Application: u.Application, Environment: u.Environment, AgentName: u.AgentName,
		TraceId: u.TraceID, SpanId: u.SpanID, ConversationId: u.ConversationID, SessionId: u.SessionID, TaskId: p.TaskID,
		AttributionRule: p.AttributionRule, AttributeKeys: e.keys, AttributeValues: e.vals,
		PriceId: p.PriceID, PriceSource: p.PriceSource, PricingTier: p.PricingTier, ContractId: p.ContractID,
		CostInput: Money(p.CostInput, &m[0]), CostCacheRead: Money(p.CostCacheRead, &m[1]), CostCacheWrite: Money(p.CostCacheWrite, &m[2]),
		CostOutput: Money(p.CostOutput, &m[3]), CostReasoning: Money(p.CostReasoning, &m[4]), CostUnits: Money(p.CostUnits, &m[5]),
		PricingCurrency: p.PricingCurrency, ListCost: Money(p.ListCost, &m[6]), ContractedCost: Money(p.ContractedCost, &m[7]),
		EffectiveCost: Money(p.EffectiveCost, &m[8]), CacheSavings: Money(p.CacheSavings, &m[9]),
		BillingCurrency: p.BillingCurrency, FxRate: Money(p.FXRate, &m[10]), FxDate: fxd,
		BilledListCost: Money(p.BilledListCost, &m[11]), BilledContractedCost: Money(p.BilledContractedCost, &m[12]),
		BilledEffectiveCost: Money(p.BilledEffectiveCost, &m[13]), BilledCacheSavings: Money(p.BilledCacheSavings, &m[14]),
		PricedAt: p.PricedAt.UnixMilli(), UsageCompleteness: u.UsageCompleteness, FxStale: p.FXStale,
	}
	if rc := u.ReportedCost; rc != nil {
		a, ok := money.FromDecimal(rc.Amount)
		if !ok {
			return b, fmt.Errorf("reported_cost: %w", money.ErrRange)
		}
		e.msg.ReportedCost = Money(a, new(pricedv1.Money))
		if e.msg.ReportedCost == nil {
			e.msg.ReportedCost = &pricedv1.Money{} // reported as zero: keep "reported"
		}
		e.msg.ReportedCostCurrency = rc.Currency
	}
	return proto.MarshalOptions{Deterministic: true}.MarshalAppend(b, &e.msg)
}

// DecodePriced reads a priced.v1 value into out (every field the contract
// carries). Records written before the binary contract (JSON, first byte
// '{') are read as JSON.
func DecodePriced(b []byte, out *event.PricedUsageEvent) error {
	if IsLegacyJSON(b) {
		return decodeLegacy(b, out)
	}
	var m pricedv1.PricedUsage
	if err := proto.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("priced usage event: %w", err)
	}
	if m.EventId == "" || m.Tenant == "" {
		return errors.New("priced usage event: event_id and tenant are required")
	}
	ToEvent(&m, out)
	return nil
}

// ToEvent fills out from m.
func ToEvent(m *pricedv1.PricedUsage, out *event.PricedUsageEvent) {
	*out = event.PricedUsageEvent{
		UsageEvent: event.UsageEvent{
			EventID: m.EventId, EventTime: time.UnixMilli(m.EventTime).UTC(), Tenant: m.Tenant,
			Provider: m.Provider, Model: m.Model, Operation: m.Operation, ServiceTier: m.ServiceTier, Region: m.Region,
			InputTokens: m.InputTokens, CacheReadInputTokens: m.CacheReadInputTokens, CacheWriteInputTokens: m.CacheWriteInputTokens,
			CacheWrite1hInputTokens: m.CacheWrite_1HInputTokens, OutputTokens: m.OutputTokens, ReasoningTokens: m.ReasoningTokens,
			Units:    event.Units{Images: m.Images, AudioSeconds: m.AudioSeconds, Requests: m.Requests, ToolCalls: m.ToolCalls, WebSearches: m.WebSearches},
			Workflow: m.Workflow, PromptTemplate: m.PromptTemplate, PromptVersion: m.PromptVersion, UserID: m.UserId, Team: m.Team,
			Application: m.Application, Environment: m.Environment, AgentName: m.AgentName, TraceID: m.TraceId, SpanID: m.SpanId,
			ConversationID: m.ConversationId, SessionID: m.SessionId, UsageCompleteness: m.UsageCompleteness,
		},
		CostCentre: m.CostCentre, TaskID: m.TaskId, AttributionRule: m.AttributionRule,
		PriceID: m.PriceId, PriceSource: m.PriceSource, PricingTier: m.PricingTier, ContractID: m.ContractId,
		UncachedInputTokens: m.UncachedInputTokens, NonReasoningOutTokens: m.NonReasoningOutputTokens,
		CostInput: Amount(m.CostInput), CostCacheRead: Amount(m.CostCacheRead), CostCacheWrite: Amount(m.CostCacheWrite),
		CostOutput: Amount(m.CostOutput), CostReasoning: Amount(m.CostReasoning), CostUnits: Amount(m.CostUnits),
		PricingCurrency: m.PricingCurrency, ListCost: Amount(m.ListCost), ContractedCost: Amount(m.ContractedCost),
		EffectiveCost: Amount(m.EffectiveCost), CacheSavings: Amount(m.CacheSavings),
		BillingCurrency: m.BillingCurrency, FXRate: Amount(m.FxRate), FXDate: Date(m.FxDate), FXStale: m.FxStale,
		BilledListCost: Amount(m.BilledListCost), BilledContractedCost: Amount(m.BilledContractedCost),
		BilledEffectiveCost: Amount(m.BilledEffectiveCost), BilledCacheSavings: Amount(m.BilledCacheSavings),
		LocalDate: Date(m.LocalDate), TimeZone: m.TimeZone, PricedAt: time.UnixMilli(m.PricedAt).UTC(),
	}
	if n := min(len(m.AttributeKeys), len(m.AttributeValues)); n > 0 {
		out.Attributes = make(map[string]string, n)
		for i := range n {
			out.Attributes[m.AttributeKeys[i]] = m.AttributeValues[i]
		}
	}
	if m.ReportedCost != nil {
		out.ReportedCost = &event.Money{Amount: Amount(m.ReportedCost).Decimal(), Currency: m.ReportedCostCurrency}
	}
}

// Days is a YYYY-MM-DD date as days since 1970-01-01 ("" is day 0).
func Days(s string) (int32, error) {
	if s == "" {
		return 0, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, err
	}
	return int32(t.Unix() / 86400), nil
}

// Date is the YYYY-MM-DD of days since 1970-01-01.
func Date(days int32) string {
	return time.Unix(int64(days)*86400, 0).UTC().Format(time.DateOnly)
}
