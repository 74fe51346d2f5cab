package commit

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestLiveAdvisorLoadsInTheBackground(t *testing.T) {
	f, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	var loads atomic.Int32
	v := &Live{File: f, Every: time.Hour, Load: func(_ context.Context, l *Ledger, _ time.Time) error {
		loads.Add(1)
		l.ApplyCost("acme", "openai", "gpt-4o", "standard", day("2027-01-05"), "USD", d("200"))
		return nil
	}}
	at := day("2027-01-11")
	if a := v.AdviseCommitment("acme", "openai", "gpt-4o-mini", at); a != nil {
		t.Fatalf("advice before the first load: %+v", a)
	}
	deadline := time.Now().Add(10 * time.Second)
	for v.cur.Load() == nil || v.loading.Load() {
		if time.Now().After(deadline) {
			t.Fatal("no background load")
		}
		time.Sleep(time.Millisecond)
	}
	a := v.AdviseCommitment("acme", "openai", "gpt-4o-mini", at)
	// Nothing drew on the Anthropic credits: the 500 one, untouched, is the
	// largest unused amount (more than oa-commit's projected 380 shortfall).
	if a == nil || a.CommitmentID != "an-credit-long" || a.PreferProvider != "anthropic" || a.ProjectedUnused.String() != "500" || loads.Load() != 1 {
		t.Fatalf("advice %+v after %d loads", a, loads.Load())
	}
	// A failing refresh keeps the previous ledger.
	v.Load = func(context.Context, *Ledger, time.Time) error { return errors.New("ClickHouse down") }
	if err := v.Refresh(context.Background()); err == nil {
		t.Fatal("refresh error lost")
	}
	if a := v.AdviseCommitment("acme", "openai", "gpt-4o-mini", at); a == nil {
		t.Fatal("previous ledger dropped")
	}
}
