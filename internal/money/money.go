// Package money is tokenmeter's fixed-point decimal for stored amounts: a
// 128-bit two's-complement coefficient at one declared scale, Scale, which
// is the scale of every Decimal(38, Scale) column in ClickHouse. Costs are
// computed exactly (internal/pricing) and rounded ONCE, half to even, to
// Scale when they become an Amount; from then on the processor's priced
// record, the budget ledger, the sink and the views all hold the same
// value, so sums agree to the last place everywhere.
//
// Decimal strings (shopspring/decimal) are for the edges: config files,
// JSON, reports. The coefficient goes to ClickHouse as a Decimal128 as is,
// never through math/big.
package money

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"

	"github.com/shopspring/decimal"
)

// Scale is the storage scale: an Amount is Coefficient × 10^-Scale. It is
// the S of ClickHouse's Decimal(38, S) money columns (schemas/clickhouse),
// and a test there checks that the DDL says the same.
const Scale = 12

// Amount is an exact decimal with Scale places. The zero value is 0.
type Amount struct {
	hi int64  // high 64 bits of the coefficient (sign included)
	lo uint64 // low 64 bits
}

// maxCoef is the largest coefficient ClickHouse's Decimal(38, S) holds
// (10^38 - 1); amounts beyond it are refused where they are made.
var maxCoef = func() *big.Int {
	m := new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil)
	return m.Sub(m, big.NewInt(1))
}()

// ErrRange is an amount outside Decimal(38, Scale).
var ErrRange = errors.New("amount outside Decimal(38, 12)")

// FromCoef is the Amount whose coefficient is c (c × 10^-Scale).
func FromCoef(c int64) Amount { return Amount{hi: c >> 63, lo: uint64(c)} }

// FromCoef128 is the Amount with the given two's-complement coefficient
// halves, as ClickHouse's Decimal128 holds them.
func FromCoef128(hi int64, lo uint64) Amount { return Amount{hi: hi, lo: lo} }

// Coef128 returns the coefficient's halves (two's complement): what a
// ClickHouse Decimal128 column stores.
func (a Amount) Coef128() (hi int64, lo uint64) { return a.hi, a.lo }

// Coef64 returns the coefficient when it fits an int64.
func (a Amount) Coef64() (int64, bool) {
	c := int64(a.lo)
	return c, a.hi == c>>63
}

// FromInt is n whole units.
func FromInt(n int64) Amount {
	hi, lo := bits.Mul64(uabs(n), pow10[Scale])
	return neg128(n < 0, hi, lo)
}

// pow10[i] = 10^i for i ≤ 19.
var pow10 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

func uabs(v int64) uint64 {
	if v < 0 {
		return uint64(-v) // -MinInt64 wraps to its own magnitude as uint64
	}
	return uint64(v)
}

// neg128 returns the Amount of magnitude (hi, lo), negated when neg.
func neg128(neg bool, hi, lo uint64) Amount {
	if neg {
		lo = ^lo + 1
		hi = ^hi
		if lo == 0 {
			hi++
		}
	}
	return Amount{hi: int64(hi), lo: lo}
}

// Scaled rounds v × 10^-scale to Scale places, half to even. scale ≥ 0;
// with scale ≤ Scale the value is exact.
func Scaled(v int64, scale int32) Amount {
	switch {
	case scale == Scale:
		return FromCoef(v)
	case scale < Scale:
		hi, lo := bits.Mul64(uabs(v), pow10[Scale-scale])
		return neg128(v < 0, hi, lo)
	}
	a, _ := Scaled128(v < 0, 0, uabs(v), scale)
	return a
}

// Scaled128 rounds ±(hi·2^64 + lo) × 10^-scale (a magnitude and a sign) to
// Scale places, half to even. ok is false when the result does not fit
// Decimal(38, Scale) (possible only for scale < Scale).
func Scaled128(neg bool, hi, lo uint64, scale int32) (a Amount, ok bool) {
	if scale <= Scale {
		return fromBig(new(big.Int).Mul(mag(neg, hi, lo), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(Scale-scale)), nil)))
	}
	d := int(scale - Scale)
	if d > 19 {
		return fromBigRat(mag(neg, hi, lo), d)
	}
	div := pow10[d]
	qhi, r := hi/div, hi%div
	qlo, rem := bits.Div64(r, lo, div)
	// Half to even: up when the remainder is above half, or exactly half
	// and the quotient is odd.
	half := div / 2 // div is even (a power of ten ≥ 10)
	if rem > half || (rem == half && qlo&1 == 1) {
		var c uint64
		qlo, c = bits.Add64(qlo, 1, 0)
		qhi += c
	}
	if qhi > math.MaxInt64 {
		return Amount{}, false
	}
	return neg128(neg, qhi, qlo), fits(neg128(neg, qhi, qlo))
}

func mag(neg bool, hi, lo uint64) *big.Int {
	b := new(big.Int).SetUint64(hi)
	b.Lsh(b, 64).Or(b, new(big.Int).SetUint64(lo))
	if neg {
		b.Neg(b)
	}
	return b
}

// fromBigRat rounds v × 10^-d to an integer coefficient, half to even.
func fromBigRat(v *big.Int, d int) (Amount, bool) {
	div := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d)), nil)
	return fromBig(roundDiv(v, div))
}

// roundDiv is v / div rounded half to even (div > 0).
func roundDiv(v, div *big.Int) *big.Int {
	q, r := new(big.Int).QuoRem(v, div, new(big.Int))
	twice := new(big.Int).Abs(r)
	twice.Lsh(twice, 1)
	if c := twice.Cmp(div); c > 0 || (c == 0 && q.Bit(0) == 1) {
		if v.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}

// fromBig is the Amount with coefficient c; ok is false outside Decimal(38, Scale).
func fromBig(c *big.Int) (Amount, bool) {
	if new(big.Int).Abs(c).Cmp(maxCoef) > 0 {
		return Amount{}, false
	}
	neg := c.Sign() < 0
	m := new(big.Int).Abs(c)
	lo := m.Uint64()
	hi := new(big.Int).Rsh(m, 64).Uint64()
	return neg128(neg, hi, lo), true
}

// InRange reports whether a is within Decimal(38, Scale) (|coefficient| ≤
// 10^38 - 1): an Amount read from outside input may not be.
func (a Amount) InRange() bool { return fits(a) }

// fits reports whether a is within Decimal(38, Scale): |coef| ≤ 10^38 - 1.
func fits(a Amount) bool {
	if _, ok := a.Coef64(); ok {
		return true
	}
	return new(big.Int).Abs(a.big()).Cmp(maxCoef) <= 0
}

// FromDecimal rounds d to Scale places, half to even. ok is false when the
// result is outside Decimal(38, Scale).
func FromDecimal(d decimal.Decimal) (Amount, bool) {
	exp := d.Exponent()
	if exp <= 0 && d.NumDigits() <= 18 {
		return Scaled(d.CoefficientInt64(), -exp), true
	}
	c := d.Coefficient()
	if exp > 0 {
		c.Mul(c, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil))
		exp = 0
	}
	s := int(-exp)
	if s <= Scale {
		return fromBig(c.Mul(c, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(Scale-s)), nil)))
	}
	return fromBigRat(c, s-Scale)
}

// MustDecimal is FromDecimal for values known to fit (tests, constants).
func MustDecimal(d decimal.Decimal) Amount {
	a, ok := FromDecimal(d)
	if !ok {
		return Amount{}
	}
	return a
}

// Parse reads a decimal string ("0.0294", "-1.5e-7"), rounding to Scale
// places half to even.
func Parse(s string) (Amount, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return Amount{}, fmt.Errorf("%q is not a decimal number: %w", s, err)
	}
	a, ok := FromDecimal(d)
	if !ok {
		return Amount{}, fmt.Errorf("%q: %w", s, ErrRange)
	}
	return a, nil
}

// big returns the coefficient as a big.Int (edges only).
func (a Amount) big() *big.Int {
	neg := a.hi < 0
	hi, lo := uint64(a.hi), a.lo
	if neg {
		lo = ^lo + 1
		hi = ^hi
		if lo == 0 {
			hi++
		}
	}
	return mag(neg, hi, lo)
}

// Decimal is a as a shopspring decimal (for the edges: ledgers and reports
// that add beyond Decimal(38, Scale), presentation).
func (a Amount) Decimal() decimal.Decimal {
	if a == (Amount{}) {
		return decimal.Zero
	}
	if c, ok := a.Coef64(); ok {
		return decimal.New(c, -Scale)
	}
	return decimal.NewFromBigInt(a.big(), -Scale)
}

// IsZero reports a == 0.
func (a Amount) IsZero() bool { return a == Amount{} }

// Sign is -1, 0 or +1.
func (a Amount) Sign() int {
	switch {
	case a.hi < 0:
		return -1
	case a.hi == 0 && a.lo == 0:
		return 0
	}
	return 1
}

// Add returns a + b. Two amounts within Decimal(38, Scale) (|coef| < 10^38,
// far below 2^127) never wrap; a sum of many may leave Decimal(38, Scale),
// so ledgers that add without bound use Decimal.
func (a Amount) Add(b Amount) Amount {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	return Amount{hi: a.hi + b.hi + int64(c), lo: lo}
}

// Neg returns -a.
func (a Amount) Neg() Amount {
	lo := ^a.lo + 1
	hi := ^a.hi
	if lo == 0 {
		hi++
	}
	return Amount{hi: hi, lo: lo}
}

// Cmp compares a and b: -1, 0 or +1.
func (a Amount) Cmp(b Amount) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

// String is the decimal with trailing fractional zeros dropped ("0.0294",
// "12", "-0.000000000001").
func (a Amount) String() string { return string(a.AppendText(nil)) }

// AppendText appends a.String() to b without math/big for coefficients
// that fit an int64 (every realistic single cost).
func (a Amount) AppendText(b []byte) []byte {
	c, ok := a.Coef64()
	if !ok {
		return append(b, a.Decimal().String()...)
	}
	if c < 0 {
		b = append(b, '-')
	}
	u := uabs(c)
	scale := Scale
	for scale > 0 && u%10 == 0 {
		u /= 10
		scale--
	}
	var arr [24]byte
	digits := strconv.AppendUint(arr[:0], u, 10)
	switch {
	case scale == 0:
		return append(b, digits...)
	case len(digits) > scale:
		b = append(b, digits[:len(digits)-scale]...)
		b = append(b, '.')
		return append(b, digits[len(digits)-scale:]...)
	}
	b = append(b, '0', '.')
	for range scale - len(digits) {
		b = append(b, '0')
	}
	return append(b, digits...)
}

// MarshalJSON writes a JSON string ("0.0294"), as shopspring does, so no
// JSON reader takes it for a float.
func (a Amount) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 24), '"')
	b = a.AppendText(b)
	return append(b, '"'), nil
}

// UnmarshalJSON reads a JSON string or number, rounding to Scale places.
func (a *Amount) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*a = Amount{}
		return nil
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}
