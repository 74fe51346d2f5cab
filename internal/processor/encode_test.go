package processor

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// fillAll sets every field of v to a distinct non-zero value, so that an
// encoder that forgets a field cannot match encoding/json.
func fillAll(t testing.TB, v reflect.Value, seed *int64) {
	t.Helper()
	*seed++
	s := *seed
	switch v.Interface().(type) {
	case time.Time:
		v.Set(reflect.ValueOf(time.Date(2026, 11, 28, 1, 2, 3, int(s)*1000+7, time.UTC)))
		return
	case decimal.Decimal:
		v.Set(reflect.ValueOf(decimal.New(s*1234567-9000, -int32(s%14))))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("v" + string(rune('a'+s%26)) + "-" + decimal.NewFromInt(s).String())
	case reflect.Int64, reflect.Int32, reflect.Int:
		v.SetInt(s)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Struct:
		for i := range v.NumField() {
			fillAll(t, v.Field(i), seed)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillAll(t, v.Elem(), seed)
	case reflect.Map:
		if v.Type() != reflect.TypeOf(map[string]string{}) {
			t.Fatalf("unexpected map type %s: extend appendPriced and this test", v.Type())
		}
		v.Set(reflect.ValueOf(map[string]string{"z.last": "1", "a.first": "2", "service.name": "bot"}))
	default:
		t.Fatalf("field of kind %s: extend appendPriced and this test", v.Kind())
	}
}

func TestAppendPricedMatchesEncodingJSON(t *testing.T) {
	var full event.PricedUsageEvent
	var seed int64
	fillAll(t, reflect.ValueOf(&full).Elem(), &seed)

	sparse := event.PricedUsageEvent{
		UsageEvent: event.UsageEvent{EventID: `quote " back \ slash <b>&`, Tenant: "ünïcode ✓", Model: "m\u2028x\x01", Units: event.Units{ToolCalls: 3},
			EventTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("HKT", 8*3600))},
		CostInput:  decimal.RequireFromString("-0.000000000001"),
		CostOutput: decimal.RequireFromString("123456789012345678901234.5"),
		CostUnits:  decimal.New(12, 3),
		FXRate:     decimal.RequireFromString("7.80"),
		ListCost:   decimal.RequireFromString("0.000300000000"),
	}
	for name, p := range map[string]*event.PricedUsageEvent{"every field set": &full, "sparse, escapes, odd decimals": &sparse, "zero": {}} {
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		got := appendPriced(nil, p)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

func TestAppendDecimalMatchesString(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		c := r.Int64N(1<<62) >> r.IntN(62)
		if r.IntN(2) == 0 {
			c = -c
		}
		d := decimal.New(c, -int32(r.IntN(30))+2)
		want := `"` + d.String() + `"`
		if got := string(appendDecimal(nil, d)); got != want {
			t.Fatalf("%s (coef %d exp %d): got %s want %s", d, c, d.Exponent(), got, want)
		}
	}
}

func benchPriced(b *testing.B) *event.PricedUsageEvent {
	var p event.PricedUsageEvent
	var seed int64
	fillAll(b, reflect.ValueOf(&p).Elem(), &seed)
	return &p
}

// BenchmarkEncodePriced compares the priced-record encoder with encoding/json
// on an event with every field set (the same bytes come out).
func BenchmarkEncodePriced(b *testing.B) {
	p := benchPriced(b)
	b.Run("appendPriced", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf = appendPriced(buf[:0], p)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// appendTime is time.Time.MarshalJSON, byte for byte: UTC times with every
// fraction length, the year limits, other zones, the zero time.
func TestAppendTimeMatchesMarshalJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	hk := time.FixedZone("HKT", 8*3600)
	check := func(tm time.Time) {
		want, err := tm.MarshalJSON()
		if err != nil {
			want = nil
		}
		if got := appendTime(nil, tm); !bytes.Equal(got, want) {
			t.Fatalf("%v: got %s want %s", tm, got, want)
		}
	}
	for range 20000 {
		ns := r.IntN(1_000_000_000)
		if r.IntN(3) == 0 {
			ns = ns / 1_000_000 * 1_000_000 // milliseconds, as event_time
		}
		tm := time.Date(r.IntN(10000), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), ns, time.UTC)
		check(tm)
		check(tm.In(hk))
		check(tm.Local())
	}
	for _, tm := range []time.Time{{}, time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 28, 0, 0, 0, 100, time.UTC), time.Now(), time.Now().UTC()} {
		check(tm)
	}
}

// appendString is json.Marshal of a string, byte for byte, wherever a
// character that needs escaping sits relative to the 8-byte blocks.
func TestAppendStringMatchesMarshal(t *testing.T) {
	specials := []string{`"`, `\`, `<`, `>`, `&`, "\x00", "\x1f", "\x7f", "é", "\u2028", "\xff", " ", "~"}
	for n := range 20 {
		for _, sp := range specials {
			for k := 0; k <= n; k++ {
				s := strings.Repeat("a", k) + sp + strings.Repeat("Z", n-k)
				want, _ := json.Marshal(s)
				if got := appendString(nil, s); !bytes.Equal(got, want) {
					t.Fatalf("%q: got %s want %s", s, got, want)
				}
			}
		}
	}
	for c := range 256 {
		for k := range 8 {
			w := []byte("plain-tx")
			w[k] = byte(c)
			want := c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c < 0x20 || c >= 0x80
			if got := needsEscape8(load8(string(w), 0)) != 0; got != want {
				t.Fatalf("byte %#x at %d: needsEscape8 %v", c, k, got)
			}
		}
	}
}
