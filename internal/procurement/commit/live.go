package commit

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/budget"
)

// Live answers the budget decision API's commitment advice from a ledger
// rebuilt from priced usage (Load: ClickHouse's v_commitment_spend_daily)
// at most every Every. A stale ledger is rebuilt in the background, one
// rebuild at a time, so a decision never waits for ClickHouse; until the
// first load it answers nothing.
type Live struct {
	File  *File
	Load  func(ctx context.Context, l *Ledger, now time.Time) error
	Every time.Duration // default 1 minute
	Log   *slog.Logger

	cur     atomic.Pointer[liveLedger]
	loading atomic.Bool
}

type liveLedger struct {
	l  *Ledger
	at time.Time
}

// Refresh rebuilds the ledger now.
func (v *Live) Refresh(ctx context.Context) error {
	l, err := New(v.File)
	if err != nil {
		return err
	}
	now := time.Now()
	if err := v.Load(ctx, l, now); err != nil {
		return err
	}
	v.cur.Store(&liveLedger{l: l, at: now})
	return nil
}

func (v *Live) every() time.Duration {
	if v.Every <= 0 {
		return time.Minute
	}
	return v.Every
}

// Kick starts a background rebuild unless one is running (bounded by 30 s).
func (v *Live) Kick() {
	if !v.loading.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer v.loading.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := v.Refresh(ctx); err != nil && v.Log != nil {
			v.Log.Warn("commitments: drawdown not refreshed; advice uses the previous one", "err", err)
		}
	}()
}

// AdviseCommitment implements budget.CommitmentAdvisor.
func (v *Live) AdviseCommitment(tenant, provider, model string, at time.Time) *budget.CommitmentAdvice {
	cur := v.cur.Load()
	if cur == nil || time.Since(cur.at) > v.every() {
		v.Kick()
	}
	if cur == nil {
		return nil
	}
	return BudgetAdvisor{Ledger: cur.l}.AdviseCommitment(tenant, provider, model, at)
}
