package exact

import (
	"math/big"
	"testing"

	"github.com/shopspring/decimal"
)

func TestRatIsExact(t *testing.T) {
	for _, s := range []string{"0", "1.5", "-0.000000000001", "123456789012345678901234.5678", "7.7812"} {
		d := decimal.RequireFromString(s)
		if got := Round(Rat(d), 12); !got.Equal(d) {
			t.Fatalf("%s -> %s", s, got)
		}
	}
}

func TestRoundHalfEven(t *testing.T) {
	cases := map[string]string{"1/8": "0.12", "3/8": "0.38", "-1/8": "-0.12", "-3/8": "-0.38", "1/3": "0.33", "2/3": "0.67"}
	for in, want := range cases {
		r, _ := new(big.Rat).SetString(in)
		if got := Round(r, 2).String(); got != want {
			t.Fatalf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestRoundSumAddsUp(t *testing.T) {
	third, _ := new(big.Rat).SetString("1/3")
	// 1/3 three times: each rounds to 0.33, but the total 1.00 needs one
	// part at 0.34 (the first, on a tie of remainders).
	got := RoundSum([]*big.Rat{third, third, third}, 2)
	if got[0].String() != "0.34" || got[1].String() != "0.33" || got[2].String() != "0.33" {
		t.Fatalf("%v", got)
	}
	// Negative parts: -1/3, -1/3, 2/3 sum to 0.
	neg, _ := new(big.Rat).SetString("-1/3")
	two, _ := new(big.Rat).SetString("2/3")
	got = RoundSum([]*big.Rat{neg, neg, two}, 2)
	sum := got[0].Add(got[1]).Add(got[2])
	if !sum.IsZero() {
		t.Fatalf("%v sums to %s", got, sum)
	}
	for i, g := range got {
		want := []string{"-0.33", "-0.33", "0.66"}[i]
		if g.String() != want && !(i == 2 && g.String() == "0.67") {
			t.Fatalf("part %d: %s", i, g)
		}
	}
}

func TestQuoByZeroIsUndefined(t *testing.T) {
	if Quo(Int(1), Zero()) != nil {
		t.Fatal("1/0 must be undefined")
	}
}
