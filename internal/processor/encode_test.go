package processor

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/contract"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/money"
)

// fillAll sets every field of v to a distinct non-zero value.
func fillAll(t testing.TB, v reflect.Value, seed *int64) {
	t.Helper()
	*seed++
	s := *seed
	switch v.Interface().(type) {
	case time.Time:
		v.Set(reflect.ValueOf(time.Date(2026, 11, 28, 1, 2, 3, int(s)*1_000_000, time.UTC)))
		return
	case decimal.Decimal:
		v.Set(reflect.ValueOf(decimal.New(s*1234567-9000, -int32(s%12))))
		return
	case money.Amount:
		v.Set(reflect.ValueOf(money.FromCoef(s*1234567 - 9000)))
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
		v.Set(reflect.ValueOf(map[string]string{"z.last": "1", "a.first": "2", "service.name": "bot"}))
	default:
		t.Fatalf("field of kind %s: extend this test", v.Kind())
	}
}

func benchPriced(b *testing.B) *event.PricedUsageEvent {
	var p event.PricedUsageEvent
	var seed int64
	fillAll(b, reflect.ValueOf(&p).Elem(), &seed)
	p.LocalDate, p.FXDate = "2026-11-28", "2026-11-27"
	return &p
}

// BenchmarkEncodePriced measures the priced-record encoder (the priced.v1
// contract, internal/contract) on an event with every field set, beside
// encoding/json of the same event for scale.
func BenchmarkEncodePriced(b *testing.B) {
	p := benchPriced(b)
	b.Run("contract", func(b *testing.B) {
		b.ReportAllocs()
		var enc contract.Encoder
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			var err error
			if buf, err = enc.AppendPriced(buf[:0], p); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf)), "bytes/record")
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			j, err := json.Marshal(p)
			if err != nil {
				b.Fatal(err)
			}
			n = len(j)
		}
		b.ReportMetric(float64(n), "bytes/record")
	})
}
