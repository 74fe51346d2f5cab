// Package budget is the budget role. (Skeleton: being written.)
package budget

import (
	"context"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/role"
)

// Budget is the budget role.
type Budget struct {
	cfg  Config
	deps role.Deps
}

// New builds the role; it validates cfg first.
func New(cfg Config, prices *pricing.Engine, deps role.Deps) (*Budget, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	_ = prices
	return &Budget{cfg: cfg, deps: deps}, nil
}

// Name implements role.Role.
func (r *Budget) Name() string { return "budget" }

// Start implements role.Role.
func (r *Budget) Start(ctx context.Context, fatal chan<- error) error { return nil }

// Shutdown implements role.Role.
func (r *Budget) Shutdown(ctx context.Context) error { return nil }
