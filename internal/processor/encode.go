package processor

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// appendPriced appends the JSON of a priced event, byte for byte what
// encoding/json produces for it, without reflection and with decimals
// formatted from their int64 coefficient (shopspring's String goes through
// math/big). The priced record is the processor's hottest output;
// TestAppendPricedMatchesEncodingJSON fills every field (by reflection, so a
// field added to the event model later fails it until it is added here) and
// compares with json.Marshal.
func appendPriced(b []byte, p *event.PricedUsageEvent) []byte {
	e := &p.UsageEvent
	b = append(b, `{"event_id":`...)
	b = appendString(b, e.EventID)
	b = append(b, `,"event_time":`...)
	b = appendTime(b, e.EventTime)
	b = appendStrField(b, `,"tenant":`, e.Tenant)
	b = appendStrField(b, `,"provider":`, e.Provider)
	b = appendStrField(b, `,"model":`, e.Model)
	b = appendStrOmit(b, `,"operation":`, e.Operation)
	b = appendStrOmit(b, `,"service_tier":`, e.ServiceTier)
	b = appendStrOmit(b, `,"region":`, e.Region)
	b = appendIntField(b, `,"input_tokens":`, e.InputTokens)
	b = appendIntOmit(b, `,"cache_read_input_tokens":`, e.CacheReadInputTokens)
	b = appendIntOmit(b, `,"cache_write_input_tokens":`, e.CacheWriteInputTokens)
	b = appendIntOmit(b, `,"cache_write_1h_input_tokens":`, e.CacheWrite1hInputTokens)
	b = appendIntField(b, `,"output_tokens":`, e.OutputTokens)
	b = appendIntOmit(b, `,"reasoning_tokens":`, e.ReasoningTokens)
	// omitempty has no effect on a struct: encoding/json always writes units.
	b = append(b, `,"units":{`...)
	n := len(b)
	b = appendIntOmit(b, `,"images":`, e.Units.Images)
	b = appendIntOmit(b, `,"audio_seconds":`, e.Units.AudioSeconds)
	b = appendIntOmit(b, `,"requests":`, e.Units.Requests)
	b = appendIntOmit(b, `,"tool_calls":`, e.Units.ToolCalls)
	b = appendIntOmit(b, `,"web_searches":`, e.Units.WebSearches)
	if len(b) > n {
		b = append(b[:n], b[n+1:]...) // drop the first field's comma
	}
	b = append(b, '}')
	b = appendStrOmit(b, `,"usage_completeness":`, e.UsageCompleteness)
	b = appendStrOmit(b, `,"workflow":`, e.Workflow)
	b = appendStrOmit(b, `,"prompt_template":`, e.PromptTemplate)
	b = appendStrOmit(b, `,"prompt_version":`, e.PromptVersion)
	b = appendStrOmit(b, `,"user_id":`, e.UserID)
	b = appendStrOmit(b, `,"team":`, e.Team)
	b = appendStrOmit(b, `,"application":`, e.Application)
	b = appendStrOmit(b, `,"environment":`, e.Environment)
	b = appendStrOmit(b, `,"agent_name":`, e.AgentName)
	b = appendStrOmit(b, `,"trace_id":`, e.TraceID)
	b = appendStrOmit(b, `,"span_id":`, e.SpanID)
	b = appendStrOmit(b, `,"conversation_id":`, e.ConversationID)
	b = appendStrOmit(b, `,"session_id":`, e.SessionID)
	if len(e.Attributes) > 0 {
		b = append(b, `,"attributes":{`...)
		var keysArr [16]string
		keys := keysArr[:0]
		for k := range e.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, e.Attributes[k])
		}
		b = append(b, '}')
	}
	if rc := e.ReportedCost; rc != nil {
		b = append(b, `,"reported_cost":{"amount":`...)
		b = appendDecimal(b, rc.Amount)
		b = appendStrField(b, `,"currency":`, rc.Currency)
		b = append(b, '}')
	}

	b = appendStrOmit(b, `,"cost_centre":`, p.CostCentre)
	b = appendStrField(b, `,"task_id":`, p.TaskID)
	b = appendStrOmit(b, `,"attribution_rule":`, p.AttributionRule)
	b = appendStrField(b, `,"price_id":`, p.PriceID)
	b = appendStrField(b, `,"price_source":`, p.PriceSource)
	b = appendStrField(b, `,"pricing_tier":`, p.PricingTier)
	b = appendStrOmit(b, `,"contract_id":`, p.ContractID)
	b = appendIntField(b, `,"uncached_input_tokens":`, p.UncachedInputTokens)
	b = appendIntField(b, `,"non_reasoning_output_tokens":`, p.NonReasoningOutTokens)
	b = appendDecField(b, `,"cost_input":`, p.CostInput)
	b = appendDecField(b, `,"cost_cache_read":`, p.CostCacheRead)
	b = appendDecField(b, `,"cost_cache_write":`, p.CostCacheWrite)
	b = appendDecField(b, `,"cost_output":`, p.CostOutput)
	b = appendDecField(b, `,"cost_reasoning":`, p.CostReasoning)
	b = appendDecField(b, `,"cost_units":`, p.CostUnits)
	b = appendStrField(b, `,"pricing_currency":`, p.PricingCurrency)
	b = appendDecField(b, `,"list_cost":`, p.ListCost)
	b = appendDecField(b, `,"contracted_cost":`, p.ContractedCost)
	b = appendDecField(b, `,"effective_cost":`, p.EffectiveCost)
	b = appendDecField(b, `,"cache_savings":`, p.CacheSavings)
	b = appendStrField(b, `,"billing_currency":`, p.BillingCurrency)
	b = appendDecField(b, `,"fx_rate":`, p.FXRate)
	b = appendStrField(b, `,"fx_date":`, p.FXDate)
	if p.FXStale {
		b = append(b, `,"fx_stale":true`...)
	}
	b = appendDecField(b, `,"billed_list_cost":`, p.BilledListCost)
	b = appendDecField(b, `,"billed_contracted_cost":`, p.BilledContractedCost)
	b = appendDecField(b, `,"billed_effective_cost":`, p.BilledEffectiveCost)
	b = appendDecField(b, `,"billed_cache_savings":`, p.BilledCacheSavings)
	b = append(b, `,"priced_at":`...)
	b = appendTime(b, p.PricedAt)
	return append(b, '}')
}

func appendStrField(b []byte, key, v string) []byte {
	return appendString(append(b, key...), v)
}

func appendStrOmit(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(append(b, key...), v)
}

func appendIntField(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(append(b, key...), v, 10)
}

func appendIntOmit(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), v, 10)
}

func appendDecField(b []byte, key string, d decimal.Decimal) []byte {
	return appendDecimal(append(b, key...), d)
}

// appendTime writes t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds, trailing zeros trimmed).
func appendTime(b []byte, t time.Time) []byte {
	if t.Location() == time.UTC {
		// The common case (event_time and priced_at are UTC), without
		// AppendFormat's layout interpretation.
		year, month, day := t.Date()
		if year >= 0 && year <= 9999 {
			hour, minute, sec := t.Clock()
			b = append(b, '"')
			b = append4(b, year)
			b = append(b, '-')
			b = append2(b, int(month))
			b = append(b, '-')
			b = append2(b, day)
			b = append(b, 'T')
			b = append2(b, hour)
			b = append(b, ':')
			b = append2(b, minute)
			b = append(b, ':')
			b = append2(b, sec)
			if ns := t.Nanosecond(); ns != 0 {
				var frac [10]byte
				frac[0] = '.'
				for i := 9; i >= 1; i-- {
					frac[i] = byte('0' + ns%10)
					ns /= 10
				}
				n := 10
				for frac[n-1] == '0' {
					n--
				}
				b = append(b, frac[:n]...)
			}
			return append(b, 'Z', '"')
		}
	}
	if y := t.Year(); y < 0 || y > 9999 {
		j, _ := t.MarshalJSON() // an error leaves "" which fails decoding loudly
		return append(b, j...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func append2(b []byte, v int) []byte {
	return append(b, byte('0'+v/10), byte('0'+v%10))
}

func append4(b []byte, v int) []byte {
	return append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}

// appendString writes s as a JSON string. Plain printable ASCII (nearly
// every value) is copied; anything else goes through encoding/json so the
// escaping (HTML characters, invalid UTF-8, U+2028) is identical.
func appendString(b []byte, s string) []byte {
	i := 0
	for ; i+8 <= len(s); i += 8 { // eight bytes at a time while all are plain
		if needsEscape8(load8(s, i)) != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// needsEscape8 is non-zero when one of the eight bytes of w is one that
// appendString does not copy as is ('"', '\\', '<', '>', '&', below 0x20,
// above 0x7f): has-zero-byte tests, exact about whether such a byte exists.
func needsEscape8(w uint64) uint64 {
	r := w | (w-lsb*0x20)&^w
	for _, c := range [...]uint64{'"', '\\', '<', '>', '&'} {
		x := w ^ (lsb * c)
		r |= (x - lsb) &^ x
	}
	return r & msb
}

// load8 reads s[i:i+8] as a little-endian word.
func load8(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// appendDecimal writes d as decimal.Decimal.MarshalJSON does: a JSON string
// of d.String() (trailing fractional zeros trimmed).
func appendDecimal(b []byte, d decimal.Decimal) []byte {
	exp := d.Exponent()
	if exp > 0 || d.NumDigits() > 18 {
		b = append(b, '"')
		b = append(b, d.String()...)
		return append(b, '"')
	}
	c := d.CoefficientInt64() // at most 18 digits: fits, and -c does too
	b = append(b, '"')
	if c < 0 {
		b = append(b, '-')
		c = -c
	}
	// Trailing fractional zeros are dropped arithmetically (costs carry 15+
	// places, mostly zeros), then the remaining digits are written once.
	scale := int(-exp)
	u := uint64(c)
	for scale >= 4 && u%10000 == 0 {
		u /= 10000
		scale -= 4
	}
	for scale > 0 && u%10 == 0 {
		u /= 10
		scale--
	}
	var digitsArr [20]byte
	digits := strconv.AppendUint(digitsArr[:0], u, 10)
	switch {
	case scale == 0:
		b = append(b, digits...)
	case len(digits) > scale:
		b = append(b, digits[:len(digits)-scale]...)
		b = append(b, '.')
		b = append(b, digits[len(digits)-scale:]...)
	default:
		b = append(b, '0', '.')
		for range scale - len(digits) {
			b = append(b, '0')
		}
		b = append(b, digits...)
	}
	return append(b, '"')
}
