package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/budget"
	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/procurement/chstore"
	"github.com/tokenmeter/tokenmeter/internal/procurement/commit"
)

// ProcurementConfig is the optional `procurement:` section (docs/procurement.md).
type ProcurementConfig struct {
	// Commitments is a commitments file (relative to the config). When set,
	// the budget role's check answers carry commitment_advice, from a
	// drawdown rebuilt from ClickHouse (v_commitment_spend_daily) at most
	// every CommitmentsRefresh. Default: none.
	Commitments string `yaml:"commitments,omitempty"`
	// CommitmentsRefresh, default 1m.
	CommitmentsRefresh time.Duration `yaml:"commitments_refresh,omitempty"`
}

// validateProcurement checks the commitments file when one is named.
func (c *Config) validateProcurement() error {
	if c.Procurement.Commitments == "" {
		return nil
	}
	if c.Procurement.CommitmentsRefresh < 0 {
		return fmt.Errorf("commitments_refresh: must be >= 0")
	}
	if _, err := commit.Read(c.Resolve(c.Procurement.Commitments)); err != nil {
		return fmt.Errorf("commitments: %w", err)
	}
	return nil
}

// attachCommitments gives the budget role its commitment advisor.
func attachCommitments(b *budget.Budget, cfg *Config, log *slog.Logger) error {
	if cfg.Procurement.Commitments == "" {
		return nil
	}
	f, err := commit.Read(cfg.Resolve(cfg.Procurement.Commitments))
	if err != nil {
		return fmt.Errorf("procurement.commitments: %w", err)
	}
	ch := cfg.ClickHouse
	live := &commit.Live{File: f, Every: cfg.Procurement.CommitmentsRefresh, Log: log,
		Load: func(ctx context.Context, l *commit.Ledger, now time.Time) error {
			conn, err := chx.Open(ctx, ch)
			if err != nil {
				return err
			}
			defer conn.Close()
			return chstore.Store{Conn: conn, DB: ch.Database}.DrawDown(ctx, l, now)
		}}
	live.Kick() // first drawdown in the background: the role never waits for ClickHouse
	b.SetCommitmentAdvisor(live)
	return nil
}
