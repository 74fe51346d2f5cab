package pricing

import (
	"errors"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Reasons a price cannot be found; they become DLQ reasons and metric labels.
const (
	ReasonUnknownModel = "unknown_model" // no catalogue entry in force for provider/model/tier at event_time
	ReasonFXMissing    = "fx_missing"    // no rate on or before the event's date for the pair
)

// Error is a permanent pricing failure: the event goes to the DLQ with Reason.
type Error struct {
	Reason string
	Detail string
}

func (e *Error) Error() string { return e.Reason + ": " + e.Detail }

// Engine prices usage events with effective-dated catalogues, contracts and FX.
// It is immutable after Load and safe for concurrent use.
type Engine struct{}

// Load reads the files named by cfg; resolve maps a config path to a file path
// (relative to the config file).
func Load(cfg Config, resolve func(string) string) (*Engine, error) {
	return &Engine{}, nil
}

// Price fills out's pricing fields (price id, tier, per-class quantities and
// costs, list/contracted/effective cost, FX and billed costs) for ev in the
// tenant's billing currency. out.UsageEvent must already hold ev. A *Error is
// permanent (DLQ); anything else is a bug.
func (e *Engine) Price(ev *event.UsageEvent, billingCurrency string, out *event.PricedUsageEvent) error {
	return errors.New("pricing: not implemented")
}

// Now is the engine's clock for priced_at; tests may replace it.
var Now = time.Now
