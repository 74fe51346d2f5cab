package processor

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
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
