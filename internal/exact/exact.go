// Package exact does the arithmetic of analyses that divide money (shares,
// prices per token, costs per outcome) without losing a digit, and rounds
// only when presenting, in a way that keeps sums true.
//
// Inside an analysis every quantity is a big.Rat, so ratios such as
// cost/tokens × tokens/calls give back the original cost exactly and a
// decomposition's parts add up to its total with no residual. At the edge,
// RoundSum turns the parts into decimals at a presentation scale whose sum is
// exactly the rounded total (largest-remainder rounding), so a printed table
// adds up to the cent it shows.
package exact

import (
	"math/big"
	"sort"

	"github.com/shopspring/decimal"
)

// Rat converts a decimal exactly.
func Rat(d decimal.Decimal) *big.Rat {
	r := new(big.Rat).SetInt(d.Coefficient())
	e := d.Exponent()
	if e == 0 {
		return r
	}
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(e))), nil)
	if e > 0 {
		return r.Mul(r, new(big.Rat).SetInt(p))
	}
	return r.Quo(r, new(big.Rat).SetInt(p))
}

// Int converts an integer count.
func Int(n int64) *big.Rat { return new(big.Rat).SetInt64(n) }

// Zero is a new zero.
func Zero() *big.Rat { return new(big.Rat) }

// Quo is a/b, or nil when b is zero (an undefined ratio, which callers fill
// or report; never a silent zero).
func Quo(a, b *big.Rat) *big.Rat {
	if b.Sign() == 0 {
		return nil
	}
	return new(big.Rat).Quo(a, b)
}

// Mul is a*b.
func Mul(a, b *big.Rat) *big.Rat { return new(big.Rat).Mul(a, b) }

// Add is the sum of its arguments.
func Add(xs ...*big.Rat) *big.Rat {
	s := new(big.Rat)
	for _, x := range xs {
		s.Add(s, x)
	}
	return s
}

// Sub is a-b.
func Sub(a, b *big.Rat) *big.Rat { return new(big.Rat).Sub(a, b) }

// Round rounds r half to even at scale decimal places.
func Round(r *big.Rat, scale int32) decimal.Decimal {
	units := scaled(r, scale)
	q, rem := new(big.Int).QuoRem(units.Num(), units.Denom(), new(big.Int))
	// q is truncated toward zero; compare twice the remainder with the denominator.
	twice := new(big.Int).Mul(new(big.Int).Abs(rem), big.NewInt(2))
	switch twice.Cmp(units.Denom()) {
	case 1:
		q.Add(q, big.NewInt(int64(r.Sign())))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(int64(r.Sign())))
		}
	}
	return decimal.NewFromBigInt(q, -scale)
}

// RoundSum rounds each part to scale places so that the rounded parts add up
// exactly to Round(sum of parts, scale): every part is first rounded down,
// then the units still missing go to the parts with the largest remainders
// (ties to the earlier part). No part moves by a whole unit or more.
func RoundSum(parts []*big.Rat, scale int32) []decimal.Decimal {
	out := make([]decimal.Decimal, len(parts))
	total := Add(parts...)
	target := Round(total, scale).Coefficient()
	floors := make([]*big.Int, len(parts))
	rems := make([]*big.Rat, len(parts))
	sum := new(big.Int)
	for i, p := range parts {
		u := scaled(p, scale)
		f := floorDiv(u.Num(), u.Denom())
		floors[i] = f
		rems[i] = new(big.Rat).Sub(u, new(big.Rat).SetInt(f))
		sum.Add(sum, f)
	}
	missing := new(big.Int).Sub(target, sum).Int64() // 0 <= missing < len(parts)+1
	order := make([]int, len(parts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rems[order[a]].Cmp(rems[order[b]]) > 0 })
	for k := int64(0); k < missing && int(k) < len(order); k++ {
		floors[order[k]].Add(floors[order[k]], big.NewInt(1))
	}
	for i, f := range floors {
		out[i] = decimal.NewFromBigInt(f, -scale)
	}
	return out
}

func scaled(r *big.Rat, scale int32) *big.Rat {
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
	return new(big.Rat).Mul(r, new(big.Rat).SetInt(p))
}

func floorDiv(a, b *big.Int) *big.Int {
	q, m := new(big.Int).DivMod(a, b, new(big.Int)) // Euclidean: m >= 0 for b > 0
	_ = m
	return q
}

func abs(e int32) int32 {
	if e < 0 {
		return -e
	}
	return e
}
