package processor

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/contract/pricedv1"
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

// The dedupe memory is rebuilt from batched records (one per transaction
// and partition) and from the one-record-per-event log written before
// batching, so an upgrade keeps recognising what was priced.
func TestLoadSeenReadsBatchedAndOneEventRecords(t *testing.T) {
	const topic = "dedupe"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	cl, err := kgo.NewClient(append(base, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	batch, err := appendDedupeBatch(nil, &pricedv1.DedupeBatch{Entries: []*pricedv1.DedupeEntry{
		{Key: "acme/e2", ContentHash: 0x2222}, {Key: "globex/e2", ContentHash: 0x3333}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := cl.ProduceSync(ctx,
		&kgo.Record{Topic: topic, Partition: 1, Key: []byte("acme/e1"), Value: dedupeValue(0x1111)},
		&kgo.Record{Topic: topic, Partition: 1, Value: batch},
		&kgo.Record{Topic: topic, Partition: 0, Key: []byte("acme/other"), Value: dedupeValue(0x9999)},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got, err := loadSeen(ctx, base, topic, map[int32]uint64{1: 7}, 0)
	if err != nil {
		t.Fatal(err)
	}
	ps := got[1]
	want := map[string]uint64{"acme/e1": 0x1111, "acme/e2": 0x2222, "globex/e2": 0x3333}
	if ps == nil || len(ps.ids) != len(want) || ps.epoch != 7 {
		t.Fatalf("partition 1 state %+v, want %v", ps, want)
	}
	for id, h := range want {
		if ps.ids[id].hash != h {
			t.Errorf("%s: hash %x, want %x", id, ps.ids[id].hash, h)
		}
	}
	if err := parseDedupe(nil, []byte{3, 1, 2}, func(string, uint64) {}); err == nil {
		t.Error("an unknown dedupe record version was accepted")
	}
}
