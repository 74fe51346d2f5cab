package money

import (
	"encoding/json"
	"testing"

	"github.com/shopspring/decimal"
)

// Half to even at the 13th place, every value worked by hand: the 12-place
// result is the nearest multiple of 10^-12, and an exact tie goes to the
// even last digit.
func TestScaledRoundsHalfToEvenAtStorageScale(t *testing.T) {
	for _, c := range []struct {
		v     int64
		scale int32
		want  string
	}{
		{25, 13, "0.000000000002"},       // 2.5e-12 → tie → 2 (even)
		{35, 13, "0.000000000004"},       // 3.5e-12 → tie → 4 (even)
		{-25, 13, "-0.000000000002"},     // symmetric
		{-35, 13, "-0.000000000004"},     // symmetric
		{26, 13, "0.000000000003"},       // above half → up
		{24, 13, "0.000000000002"},       // below half → down
		{25000001, 19, "0.000000000003"}, // 2.5000001e-12: above the tie → up
		{24999999, 19, "0.000000000002"}, // 2.4999999e-12 → down
		// 0.123456789012345 (15 places, as the engine computes): the 13th
		// place is 3 → 0.123456789012
		{123456789012345, 15, "0.123456789012"},
		// 0.0000000000015 (a tie at the 13th place, odd 12th digit 1) → 0.000000000002
		{15, 13, "0.000000000002"},
		// 0.0000000000005 → tie, 12th digit 0 (even) → 0
		{5, 13, "0"},
		{7, 0, "7"},
		{-123, 2, "-1.23"},
	} {
		if got := Scaled(c.v, c.scale).String(); got != c.want {
			t.Errorf("Scaled(%d, %d) = %s, want %s", c.v, c.scale, got, c.want)
		}
	}
}

func TestFromDecimalRoundsOnce(t *testing.T) {
	for in, want := range map[string]string{
		"0.0000000000125":     "0.000000000012", // tie, 12th digit 2 even → stays
		"0.0000000000135":     "0.000000000014", // tie, 3 odd → up
		"0.00000000001250001": "0.000000000013",
		"-0.0000000000135":    "-0.000000000014",
		"1234567.5":           "1234567.5",
		"0.1":                 "0.1",
		"1e3":                 "1000",
		// 30 integer digits is beyond int64 at scale 12 but inside Decimal(38,12)
		"12345678901234567890123.0000000000005": "12345678901234567890123", // tie → even (…0)
		"12345678901234567890123.0000000000015": "12345678901234567890123.000000000002",
	} {
		a, err := Parse(in)
		if err != nil {
			t.Fatalf("Parse(%s): %v", in, err)
		}
		if got := a.String(); got != want {
			t.Errorf("Parse(%s) = %s, want %s", in, got, want)
		}
		if !a.Decimal().Equal(decimal.RequireFromString(want)) {
			t.Errorf("Parse(%s).Decimal() = %s, want %s", in, a.Decimal(), want)
		}
	}
	if _, err := Parse("1e30"); err == nil { // 10^30 × 10^12 = 10^42 > 10^38 - 1
		t.Error("1e30 fits Decimal(38, 12)? want ErrRange")
	}
	if _, err := Parse("99999999999999999999999999.999999999999"); err != nil { // the largest Decimal(38, 12)
		t.Errorf("largest Decimal(38, 12): %v", err)
	}
}

func TestScaled128(t *testing.T) {
	// (2^64 + 5) × 10^-13: 18446744073709551621e-13 = 1844674.4073709551621 → …55162 (the 13th digit 1 < 5)
	a, ok := Scaled128(false, 1, 5, 13)
	if !ok || a.String() != "1844674.407370955162" {
		t.Errorf("got %s %v", a, ok)
	}
	// 18446744073709551625e-13 → tie at the 13th place, 12th digit 2 even → …55162
	a, _ = Scaled128(true, 1, 9, 13)
	if a.String() != "-1844674.407370955162" {
		t.Errorf("got %s", a)
	}
	// …635e-13: tie, 12th digit 3 odd → …55164
	a, _ = Scaled128(false, 1, 19, 13)
	if a.String() != "1844674.407370955164" {
		t.Errorf("got %s", a)
	}
}

func TestArithmeticAndJSON(t *testing.T) {
	a, b := FromCoef(-1), FromInt(3)
	if s := a.Add(b).String(); s != "2.999999999999" {
		t.Errorf("-1e-12 + 3 = %s", s)
	}
	if a.Sign() != -1 || b.Sign() != 1 || (Amount{}).Sign() != 0 || a.Neg().Cmp(FromCoef(1)) != 0 || a.Cmp(b) != -1 {
		t.Error("sign/cmp/neg wrong")
	}
	// carry across the 64-bit halves
	big := FromCoef128(0, ^uint64(0))
	if s := big.Add(FromCoef(1)).String(); s != "18446744.073709551616" {
		t.Errorf("carry: %s", s)
	}
	j, _ := json.Marshal(struct{ C Amount }{FromCoef(29_400_000_000)})
	if string(j) != `{"C":"0.0294"}` {
		t.Errorf("json %s", j)
	}
	var back struct{ C Amount }
	if err := json.Unmarshal([]byte(`{"C":"0.00000000000250"}`), &back); err != nil || back.C.String() != "0.000000000002" {
		t.Errorf("unmarshal: %v %s", err, back.C)
	}
}
