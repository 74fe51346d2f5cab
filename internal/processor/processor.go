// Package processor is the processor role. (Skeleton: being written.)
package processor

import (
	"context"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/role"
)

// Processor is the processor role.
type Processor struct {
	cfg  Config
	deps role.Deps
}

// New builds the role; it validates cfg first.
func New(cfg Config, prices *pricing.Engine, deps role.Deps) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	_ = prices
	return &Processor{cfg: cfg, deps: deps}, nil
}

// Name implements role.Role.
func (r *Processor) Name() string { return "processor" }

// Start implements role.Role.
func (r *Processor) Start(ctx context.Context, fatal chan<- error) error { return nil }

// Shutdown implements role.Role.
func (r *Processor) Shutdown(ctx context.Context) error { return nil }
