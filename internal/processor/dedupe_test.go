package processor

import (
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

func TestContentHashCoversEveryField(t *testing.T) {
	var base event.UsageEvent
	var seed int64
	fillAll(t, reflect.ValueOf(&base).Elem(), &seed)
	h0, _ := contentHash(&base, nil)

	// Same content, different representation: same hash.
	same := base
	same.EventTime = base.EventTime.In(time.FixedZone("HKT", 8*3600))
	same.Attributes = map[string]string{}
	for k, v := range base.Attributes {
		same.Attributes[k] = v
	}
	same.ReportedCost = &event.Money{Amount: base.ReportedCost.Amount, Currency: base.ReportedCost.Currency}
	if h, _ := contentHash(&same, nil); h != h0 {
		t.Errorf("same content hashed differently")
	}

	// Any field changed (walked by reflection, so a field added to the
	// model later fails here until contentHash covers it): different hash.
	var walk func(path string, v reflect.Value, mutate func())
	check := func(path string) {
		if h, _ := contentHash(&base, nil); h == h0 {
			t.Errorf("changing %s does not change the content hash", path)
		}
	}
	walk = func(path string, v reflect.Value, _ func()) {
		switch x := v.Interface().(type) {
		case time.Time:
			v.Set(reflect.ValueOf(x.Add(time.Millisecond)))
			check(path)
			v.Set(reflect.ValueOf(x))
			return
		case decimal.Decimal:
			v.Set(reflect.ValueOf(x.Add(decimal.New(1, -12))))
			check(path)
			v.Set(reflect.ValueOf(x))
			return
		}
		switch v.Kind() {
		case reflect.String:
			old := v.String()
			v.SetString(old + "x")
			check(path)
			v.SetString(old)
		case reflect.Int64:
			old := v.Int()
			v.SetInt(old + 1)
			check(path)
			v.SetInt(old)
		case reflect.Struct:
			for i := range v.NumField() {
				walk(path+"."+v.Type().Field(i).Name, v.Field(i), nil)
			}
		case reflect.Pointer:
			walk(path, v.Elem(), nil)
		case reflect.Map:
			old := v.Interface().(map[string]string)
			v.Set(reflect.ValueOf(map[string]string{"only": "one"}))
			check(path)
			v.Set(reflect.ValueOf(old))
		default:
			t.Fatalf("%s: kind %s not covered; extend contentHash and this test", path, v.Kind())
		}
	}
	walk("event", reflect.ValueOf(&base).Elem(), nil)
	if h, _ := contentHash(&base, nil); h != h0 {
		t.Fatal("walk did not restore the event")
	}
	// An absent reported cost differs from a zero one.
	noCost, zeroCost := base, base
	noCost.ReportedCost, zeroCost.ReportedCost = nil, &event.Money{}
	h1, _ := contentHash(&noCost, nil)
	h2, _ := contentHash(&zeroCost, nil)
	if h1 == h2 {
		t.Error("absent and zero reported_cost hash alike")
	}
}

func TestPartSeenEvictsOldestFirst(t *testing.T) {
	ps := newPartSeen(0)
	for i := range 3000 {
		ps.add(string(rune('a'+i%26))+time.Duration(i).String(), uint64(i), int64(i))
	}
	ps.evict(2000) // forget everything priced before t=2000
	if len(ps.ids) != 1000 {
		t.Fatalf("%d ids left, want 1000", len(ps.ids))
	}
	if _, ok := ps.ids["a0s"]; ok {
		t.Error("oldest id not evicted")
	}
	if e, ok := ps.ids[string(rune('a'+2999%26))+time.Duration(2999).String()]; !ok || e.hash != 2999 {
		t.Error("newest id lost")
	}
}
