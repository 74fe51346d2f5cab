package pricing

import (
	"math"
	"reflect"
	"testing"

	"github.com/shopspring/decimal"
)

// The arena's decimals are the values decimal.New builds, field for field,
// and behave as decimals in arithmetic and formatting.
func TestDecArenaMatchesDecimalNew(t *testing.T) {
	if !arenaOK {
		t.Fatal("shopspring/decimal's layout changed: the arena is disabled (every amount allocates); update decimalLayout")
	}
	vals := []int64{1, -1, 7, 42, -250_000_000_000_000, 1 << 32, 1<<62 + 12345, math.MaxInt64, math.MinInt64, math.MinInt64 + 1, 0}
	for _, scale := range []int32{0, 3, 15, 21} {
		a := new(decArena)
		for i := 0; i < 2*arenaSize; i++ { // past the arena's size: the fallback too
			v := vals[i%len(vals)]
			got, want := a.dec(v, scale), decimal.New(v, -scale)
			if v == 0 {
				want = decimal.Zero
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("dec(%d, %d) = %#v, want %#v", v, scale, got, want)
			}
			if got.String() != want.String() || !got.Add(decimal.New(1, -2)).Equal(want.Add(decimal.New(1, -2))) || got.Sign() != want.Sign() {
				t.Fatalf("dec(%d, %d) = %s, want %s", v, scale, got, want)
			}
		}
	}
	// 3 + (-3) in the same arena: independent values.
	a := new(decArena)
	x, y := a.dec(3, 2), a.dec(-3, 2)
	if x.String() != "0.03" || y.String() != "-0.03" || !x.Add(y).IsZero() {
		t.Fatalf("%s %s", x, y)
	}
}
