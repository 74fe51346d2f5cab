package retry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestBackoffGrowsToItsCapAndResets(t *testing.T) {
	b := Policy{Initial: 100 * time.Millisecond, Max: time.Second}.Backoff()
	first := b.Next()
	if first < 50*time.Millisecond || first > 150*time.Millisecond {
		t.Fatalf("first delay %s, want 100ms ±50%%", first)
	}
	var d time.Duration
	for i := 0; i < 20; i++ {
		d = b.Next()
	}
	if d < 500*time.Millisecond || d > 1500*time.Millisecond {
		t.Fatalf("capped delay %s, want about 1s", d)
	}
	b.Reset()
	if d := b.Next(); d > 150*time.Millisecond {
		t.Fatalf("after reset %s", d)
	}
}

type stageErr struct{}

func (stageErr) Error() string   { return "bad field" }
func (stageErr) Permanent() bool { return true }

func TestDoStopsOnPermanentErrors(t *testing.T) {
	p := Policy{Initial: time.Millisecond, Max: 2 * time.Millisecond}
	n := 0
	_, attempts, err := Do(context.Background(), p, func() (int, error) {
		n++
		if n < 3 {
			return 0, errors.New("transient")
		}
		return 7, nil
	})
	if err != nil || attempts != 3 {
		t.Fatalf("err %v attempts %d", err, attempts)
	}
	for _, perm := range []error{Permanent(errors.New("x")), fmt.Errorf("wrapped: %w", stageErr{})} {
		_, attempts, err = Do(context.Background(), p, func() (int, error) { return 0, perm })
		if attempts != 1 || !IsPermanent(err) {
			t.Fatalf("%v: attempts %d, permanent %v", perm, attempts, IsPermanent(err))
		}
	}
	if IsPermanent(errors.New("io timeout")) || IsPermanent(nil) {
		t.Fatal("plain errors are retryable")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Do(ctx, p, func() (int, error) { return 0, errors.New("t") }); err == nil {
		t.Fatal("cancelled context retried")
	}
}
