// Package retry is tokenmeter's one retry policy and its one
// permanent-vs-retryable error classification, the way the OpenTelemetry
// collector has configretry and consumererror. Every stage that retries
// (the sink's ClickHouse writes, the processor's sessions, the budget role's
// alert producer and webhooks) builds its delay sequence from a Policy, and
// every stage asks IsPermanent before retrying: bad input goes to the DLQ or
// a 4xx, never into an endless retry.
//
// Delays come from github.com/cenkalti/backoff/v5 (exponential, jittered).
package retry

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy is a capped exponential backoff: the first delay is Initial, each
// next one about twice the last (±50% jitter), never more than Max; MaxElapsed
// bounds all attempts of one Do (0: until ctx ends).
type Policy struct {
	Initial    time.Duration
	Max        time.Duration
	MaxElapsed time.Duration
}

// Backoff is a delay sequence for loops that retry across iterations.
type Backoff struct{ b *backoff.ExponentialBackOff }

// Backoff starts a new sequence.
func (p Policy) Backoff() *Backoff {
	b := backoff.NewExponentialBackOff()
	if p.Initial > 0 {
		b.InitialInterval = p.Initial
	}
	if p.Max > 0 {
		b.MaxInterval = p.Max
	}
	b.Reset()
	return &Backoff{b: b}
}

// Next is the delay before the next attempt.
func (b *Backoff) Next() time.Duration { return b.b.NextBackOff() }

// Reset starts over from Initial (after a success).
func (b *Backoff) Reset() { b.b.Reset() }

// Do runs op until it succeeds, returns a permanent error, ctx ends, or
// MaxElapsed passes; it returns op's result and how many attempts it made.
func Do[T any](ctx context.Context, p Policy, op func() (T, error)) (T, int, error) {
	attempts := 0
	b := p.Backoff()
	v, err := backoff.Retry(ctx, func() (T, error) {
		attempts++
		v, err := op()
		if err != nil && IsPermanent(err) {
			return v, backoff.Permanent(err)
		}
		return v, err
	}, backoff.WithBackOff(b.b), backoff.WithMaxElapsedTime(p.MaxElapsed))
	return v, attempts, err
}

// Sleep waits d or until ctx ends (false).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Permanent marks err as not worth retrying: the same input fails again.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

type permanent struct{ err error }

func (p *permanent) Error() string   { return p.err.Error() }
func (p *permanent) Unwrap() error   { return p.err }
func (p *permanent) Permanent() bool { return true }

// IsPermanent reports whether err, or an error it wraps, says it is
// permanent: one made by Permanent, or a stage's own error type with a
// Permanent() bool method (pricing.Error, ingest.ItemError, sink.RowError).
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	if errors.As(err, &p) {
		return p.Permanent()
	}
	var bp *backoff.PermanentError
	return errors.As(err, &bp)
}
