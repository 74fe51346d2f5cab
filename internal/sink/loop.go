package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The poll loop: connect, join the group, poll, buffer, write what is due,
// drain on a clean stop.

// run connects, joins the group and runs the poll loop: poll, buffer,
// write what is due, allow rebalances. ctx ends only when Shutdown's
// deadline passed (inserts of a clean stop must still run).
func (s *Sink) run(ctx context.Context, fatal chan<- error) {
	defer close(s.done)
	if !s.connected.Load() && !s.prepare(ctx) {
		return
	}
	defer func() {
		if s.closer != nil {
			_ = s.closer()
		}
	}()
	cl, err := s.newClient()
	if err != nil {
		err = fmt.Errorf("sink: kafka: %w", err)
		s.setStartErr(err)
		if fatal != nil {
			fatal <- err
		}
		return
	}
	s.mu.Lock()
	s.cl = cl
	s.mu.Unlock()
	s.admin = kadm.NewClient(cl)
	defer cl.Close()

	// pollCtx ends when Shutdown asks to stop, so a blocked poll returns.
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	go func() {
		select {
		case <-s.stop:
		case <-ctx.Done():
		}
		stopPolling()
	}()
	for {
		select {
		case <-s.stop:
			if !s.killed.Load() {
				s.drain(ctx)
			}
			return
		default:
		}
		pctx, cancel := context.WithTimeout(pollCtx, s.nextWake(time.Now()))
		fetches := cl.PollRecords(pctx, s.cfg.BatchRows)
		cancel()
		if fetches.IsClientClosed() {
			return
		}
		s.fetchErrors(fetches)
		s.mu.Lock()
		now := time.Now()
		fetches.EachRecord(func(r *kgo.Record) { s.add(r, now) })
		s.flush(ctx, time.Now(), false)
		s.applyPause()
		s.mu.Unlock()
		cl.AllowRebalance()
	}
}

// fetchErrors logs fetch errors, and stops a partition whose offset the
// log no longer has (NoResetOffset makes that an error, not a jump).
func (s *Sink) fetchErrors(fetches kgo.Fetches) {
	fetches.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		var loss *kgo.ErrDataLoss
		if errors.Is(err, kerr.OffsetOutOfRange) || errors.As(err, &loss) {
			s.stopPartition(topicPartition{topic, p}, -1, "the offset to resume at is no longer in the Kafka log: "+err.Error())
			return
		}
		s.log().Warn("kafka fetch error", "topic", topic, "partition", p, "err", err)
	})
}

// flush writes the block in flight, and cuts and writes new blocks while
// the buffers are due (all of them with force). It reports whether nothing
// is left buffered. Callers hold s.mu.
func (s *Sink) flush(ctx context.Context, now time.Time, force bool) bool {
	for {
		if s.inflight == nil {
			if s.buffered == 0 || (!force && !s.due(now)) {
				return s.buffered == 0
			}
			s.inflight = s.cut(now)
		}
		if s.lastErr != nil && now.Before(s.retryAt) && !force {
			return false
		}
		if err := s.writeBlock(ctx, s.inflight); err != nil {
			s.failed(err)
			return false
		}
		s.stored(s.inflight)
		s.inflight = nil
		if s.lastErr != nil {
			s.log().Info("clickhouse inserts recovered")
			s.lastErr, s.wait = nil, 0
			s.backoff.Reset()
			s.publishHealth()
		}
		now = time.Now()
	}
}

func (s *Sink) failed(err error) {
	s.wait = s.backoff.Next()
	s.retryAt = time.Now().Add(s.wait)
	if s.lastErr == nil {
		s.log().Error("clickhouse write failed; pausing and retrying the same block", "err", err, "retry_in", s.wait.String())
	}
	s.lastErr = err
	s.publishHealth()
	add(s.m.errors, 1)
}

// drain writes everything buffered, retrying until it succeeds or
// Shutdown's deadline cancels ctx. It first reads what is already on the
// topics (the roles upstream stop first, so their last records are there)
// until no record came for drainQuiet, or half of the time left before
// Shutdown's deadline passed (the other half is for writing): after a clean
// stop within the deadline ClickHouse holds everything that was priced.
func (s *Sink) drain(ctx context.Context) {
	readBy := time.Now().Add(drainTail)
	if !s.drainBy.IsZero() {
		readBy = time.Now().Add(time.Until(s.drainBy) / 2)
	}
	quietSince := time.Now()
	for time.Now().Before(readBy) && time.Since(quietSince) < drainQuiet && s.health.Load() == nil && ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := s.cl.PollRecords(pctx, s.cfg.BatchRows)
		cancel()
		if fetches.IsClientClosed() {
			break
		}
		if fetches.NumRecords() > 0 {
			quietSince = time.Now()
		}
		s.fetchErrors(fetches)
		s.mu.Lock()
		now := time.Now()
		fetches.EachRecord(func(r *kgo.Record) { s.add(r, now) })
		s.flush(ctx, now, false)
		s.mu.Unlock()
		s.cl.AllowRebalance()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ctx.Err() == nil {
		if s.flush(ctx, time.Now(), true) && s.inflight == nil {
			return
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(max(s.wait, s.cfg.RetryInitial)):
		}
		s.mu.Lock()
	}
}

// drainTail bounds how long a clean stop without a deadline keeps reading
// records already on the topics; drainQuiet is how long no new record must
// arrive for the topics to count as read.
const (
	drainTail  = 30 * time.Second
	drainQuiet = time.Second
)
