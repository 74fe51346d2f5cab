// Package sink is the sink role. (Skeleton: being written.)
package sink

import (
	"context"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/role"
)

// Sink is the sink role.
type Sink struct {
	cfg  Config
	deps role.Deps
}

// New builds the role; it validates cfg first.
func New(cfg Config, ch chx.Config, deps role.Deps) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	_ = ch
	return &Sink{cfg: cfg, deps: deps}, nil
}

// Name implements role.Role.
func (r *Sink) Name() string { return "sink" }

// Start implements role.Role.
func (r *Sink) Start(ctx context.Context, fatal chan<- error) error { return nil }

// Shutdown implements role.Role.
func (r *Sink) Shutdown(ctx context.Context) error { return nil }
