package pricing

import (
	"math/big"
	"reflect"
	"unsafe"

	"github.com/shopspring/decimal"
)

// Decimals without one allocation each.
//
// A priced event carries up to a dozen distinct decimal.Decimal amounts, and
// decimal.New allocates a big.Int (and its one-word magnitude) for each:
// that was most of the pricing hot path's allocations. decArena gives one
// event's amounts their big.Ints and magnitude words from a single
// allocation. shopspring/decimal has no constructor that takes ownership of
// a big.Int (NewFromBigInt copies), so the arena writes the Decimal's two
// fields through a mirror of its layout; arenaOK checks that layout by
// reflection at start-up and, should a future shopspring change it, every
// amount is built with decimal.New instead. Decimals never modify their
// big.Int, so sharing one allocation between an event's amounts is safe; it
// lives as long as any of them.

// decimalLayout mirrors decimal.Decimal.
type decimalLayout struct {
	value *big.Int
	exp   int32
}

var arenaOK = func() bool {
	t := reflect.TypeOf(decimal.Decimal{})
	if t.Size() != unsafe.Sizeof(decimalLayout{}) || t.NumField() != 2 {
		return false
	}
	v, e := t.Field(0), t.Field(1)
	return v.Name == "value" && v.Type == reflect.TypeOf((*big.Int)(nil)) && v.Offset == unsafe.Offsetof(decimalLayout{}.value) &&
		e.Name == "exp" && e.Type == reflect.TypeOf(int32(0)) && e.Offset == unsafe.Offsetof(decimalLayout{}.exp)
}()

// arenaSize covers every amount of one priced event (6 class costs, list,
// contracted, savings, 3 billed); more fall back to decimal.New.
const arenaSize = 12

type decArena struct {
	ints  [arenaSize]big.Int
	words [arenaSize]big.Word
	n     int
}

// dec turns a fixed-point amount into a decimal: v × 10^-scale, exactly what
// decimal.New(v, -scale) holds, with its big.Int from the arena (decimal.Zero
// for 0, no big.Int work).
func (a *decArena) dec(v int64, scale int32) decimal.Decimal {
	if v == 0 {
		return decimal.Zero
	}
	if !arenaOK || a.n == arenaSize || v == -1<<63 {
		return decimal.New(v, -scale)
	}
	u := v
	if u < 0 {
		u = -u
	}
	i := a.n
	a.n++
	a.words[i] = big.Word(u) // int64 magnitude fits one word on 64-bit platforms
	z := &a.ints[i]
	if unsafe.Sizeof(big.Word(0)) < 8 && uint64(u) > 1<<32-1 {
		z.SetInt64(v)
	} else {
		z.SetBits(a.words[i : i+1 : i+1])
		if v < 0 {
			z.Neg(z)
		}
	}
	var d decimal.Decimal
	l := (*decimalLayout)(unsafe.Pointer(&d))
	l.value, l.exp = z, -scale
	return d
}
