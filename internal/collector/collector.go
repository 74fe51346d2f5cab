// Package collector is the collector role. (Skeleton: being written.)
package collector

import (
	"context"

	"github.com/tokenmeter/tokenmeter/internal/role"
)

// Collector is the collector role.
type Collector struct {
	cfg  Config
	deps role.Deps
}

// New builds the role; it validates cfg first.
func New(cfg Config, deps role.Deps) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Collector{cfg: cfg, deps: deps}, nil
}

// Name implements role.Role.
func (r *Collector) Name() string { return "collector" }

// Start implements role.Role.
func (r *Collector) Start(ctx context.Context, fatal chan<- error) error { return nil }

// Shutdown implements role.Role.
func (r *Collector) Shutdown(ctx context.Context) error { return nil }
