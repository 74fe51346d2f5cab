package pricing

import (
	"math"
	"math/bits"

	"github.com/shopspring/decimal"
)

// Rates are the prices of one tier of one model as written in a catalogue or a
// contract. Token classes are per MILLION tokens; units are per unit.
//
// Defaults when a class is not given: cache_read and cache_write fall back to
// input (a provider that does not discount cached reads or bill writes
// separately charges them as input), cache_write_1h falls back to
// cache_write, reasoning falls back to output. A unit with no price is not
// billed separately (its tokens, if any, are already in the token counts).
type Rates struct {
	Input        Amount `yaml:"input,omitempty"`
	CacheRead    Amount `yaml:"cache_read,omitempty"`
	CacheWrite   Amount `yaml:"cache_write,omitempty"`    // 5-minute TTL writes (or the only write price)
	CacheWrite1h Amount `yaml:"cache_write_1h,omitempty"` // 1-hour TTL writes
	Output       Amount `yaml:"output,omitempty"`
	Reasoning    Amount `yaml:"reasoning,omitempty"`

	Image       Amount `yaml:"image,omitempty"`        // per image
	AudioSecond Amount `yaml:"audio_second,omitempty"` // per second of audio
	Request     Amount `yaml:"request,omitempty"`      // per request
	ToolCall    Amount `yaml:"tool_call,omitempty"`    // per tool call
	WebSearch   Amount `yaml:"web_search,omitempty"`   // per web search
}

const maxTo = math.MaxInt64

// rate slots: every billable quantity of an event, disjoint, in one array so
// costing is a single loop.
const (
	slotInput        = iota // uncached input tokens
	slotCacheRead           // cache read tokens
	slotCacheWrite          // 5-minute cache write tokens
	slotCacheWrite1h        // 1-hour cache write tokens
	slotOutput              // non-reasoning output tokens
	slotReasoning           // reasoning tokens
	slotImage
	slotAudioSecond
	slotRequest
	slotToolCall
	slotWebSearch
	nSlots
)

// costScale is the fixed-point scale: 1 unit = 10^-costScale currency units.
// Per-token rates and costs on the fast path are int64 counts of it.
const costScale = 15

// rateSet is one tier's resolved prices per quantity (per token, per unit):
// the exact decimal form and, when every rate fits, the same rates as int64
// multiples of 10^-costScale for the allocation-light fast path.
type rateSet struct {
	d     [nSlots]decimal.Decimal
	f     [nSlots]int64
	fixed bool // every f[i] == d[i] exactly
}

// slots returns the per-quantity rate of each slot with the documented defaults
// applied, and whether each came from the file.
func (r *Rates) slots() (out [nSlots]decimal.Decimal, given [nSlots]bool) {
	perM := func(a Amount) decimal.Decimal { return a.D.Shift(-6) }
	pick := func(i int, a Amount, fallback decimal.Decimal, tokens bool) {
		switch {
		case a.Set && tokens:
			out[i], given[i] = perM(a), true
		case a.Set:
			out[i], given[i] = a.D, true
		default:
			out[i] = fallback
		}
	}
	pick(slotInput, r.Input, decimal.Zero, true)
	pick(slotCacheRead, r.CacheRead, out[slotInput], true)
	pick(slotCacheWrite, r.CacheWrite, out[slotInput], true)
	pick(slotCacheWrite1h, r.CacheWrite1h, out[slotCacheWrite], true)
	pick(slotOutput, r.Output, decimal.Zero, true)
	pick(slotReasoning, r.Reasoning, out[slotOutput], true)
	pick(slotImage, r.Image, decimal.Zero, false)
	pick(slotAudioSecond, r.AudioSecond, decimal.Zero, false)
	pick(slotRequest, r.Request, decimal.Zero, false)
	pick(slotToolCall, r.ToolCall, decimal.Zero, false)
	pick(slotWebSearch, r.WebSearch, decimal.Zero, false)
	return out, given
}

var maxInt64 = decimal.NewFromInt(math.MaxInt64)

// newRateSet builds the fixed-point form when every rate is an exact multiple
// of 10^-costScale that fits an int64; otherwise the set is priced in decimal.
func newRateSet(d [nSlots]decimal.Decimal) *rateSet {
	rs := &rateSet{d: d, fixed: true}
	for i, v := range d {
		s := v.Shift(costScale)
		if !s.IsInteger() || s.IsNegative() || s.GreaterThan(maxInt64) {
			rs.fixed = false
			continue
		}
		rs.f[i] = s.IntPart()
	}
	return rs
}

// quantities are the disjoint billable quantities of one event, per slot.
type quantities [nSlots]int64

// mulFixed multiplies a non-negative quantity by a non-negative fixed rate;
// ok is false when the product does not fit an int64 (the caller then prices
// in decimal).
func mulFixed(q, r int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(q), uint64(r))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// addFixed adds two non-negative int64 values; ok is false on overflow.
func addFixed(a, b int64) (int64, bool) {
	s := a + b
	if s < a {
		return 0, false
	}
	return s, true
}

// costsFixed prices q on the fast path. ok is false on overflow.
func (rs *rateSet) costsFixed(q *quantities) (c [nSlots]int64, ok bool) {
	for i := range q {
		if q[i] == 0 || rs.f[i] == 0 {
			continue
		}
		if c[i], ok = mulFixed(q[i], rs.f[i]); !ok {
			return c, false
		}
	}
	return c, true
}

// costsDecimal prices q exactly in decimal (the reference form).
func (rs *rateSet) costsDecimal(q *quantities) (c [nSlots]decimal.Decimal) {
	for i := range q {
		if q[i] == 0 {
			c[i] = decimal.Zero
			continue
		}
		c[i] = decimal.NewFromInt(q[i]).Mul(rs.d[i])
	}
	return c
}
