package budget

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/shopspring/decimal"
)

// Modes of a budget.
const (
	ModeAlert   = "alert"   // never denies; the decision API says what it would have done
	ModeEnforce = "enforce" // the decision API denies requests that do not fit
)

// Periods a budget can be cut in (calendar periods in the tenant's time zone).
const (
	PeriodMonth   = "month"
	PeriodQuarter = "quarter"
)

// Units a budget amount can be in.
const (
	UnitCurrency = "currency" // the tenant's reporting currency (BilledEffectiveCost)
	UnitTokens   = "tokens"   // input_tokens + output_tokens (totals, so cache and reasoning are inside)
)

// Not-ready policies: what the decision API answers before the budget state is rebuilt.
const (
	PolicyFailOpen   = "fail-open"
	PolicyFailClosed = "fail-closed"
)

// Webhook payload formats.
const (
	FormatGeneric = "generic" // the event.Alert JSON
	FormatSlack   = "slack"   // Slack incoming-webhook JSON ({"text": ..., "blocks": ...})
)

// Config is the `budget:` section of a pipeline config.
type Config struct {
	// NotReadyPolicy is what POST /v1/budget/check answers while the budget
	// state is still being rebuilt from tokenmeter.priced.v1 (start-up) or
	// the priced topic cannot be read: "fail-open" (allow) or "fail-closed"
	// (deny). Default fail-open. The answer always says which was applied.
	NotReadyPolicy string `yaml:"not_ready_policy"`
	// ReservationTTL is how long a reservation made by a check with
	// reserve=true holds budget before it is released when no usage event
	// with the same id arrived. Default 5m.
	ReservationTTL time.Duration `yaml:"reservation_ttl"`
	// ReplayMargin is subtracted from the start of the oldest current period
	// when the state is rebuilt: priced records are looked up by their Kafka
	// timestamp (when they were priced), which may precede a skewed event
	// time. Default 1h. Events whose event_time is before the period start
	// are read and ignored.
	ReplayMargin time.Duration `yaml:"replay_margin"`
	// DedupeWindow is how long (by event time) the role remembers priced
	// event ids to ignore a repeat. priced.v1 is exactly-once by the
	// processor's contract; this is a safeguard whose memory is window ×
	// event rate (~100 bytes per id). Default 1h.
	DedupeWindow time.Duration `yaml:"dedupe_window"`
	// AlertTransactionalID is the Kafka transactional id alerts are produced
	// with. Only one process at a time produces alerts: starting a budget
	// role with the same id fences the previous one, which then keeps serving
	// decisions but stops alerting. Default "<kafka.client_id>-budget-alerts".
	AlertTransactionalID string `yaml:"alert_transactional_id"`
	// DeliveriesTopic records each finished webhook delivery (delivered,
	// rejected or given up), keyed by alert id. On start, alerts on the alerts
	// topic younger than WebhookMaxElapsed without a record for one of their
	// webhooks (the process died mid-delivery) are delivered again, with the
	// same Idempotency-Key. Created like the other topics when missing.
	// Default "tokenmeter.budget-deliveries.v1".
	DeliveriesTopic string `yaml:"deliveries_topic"`
	// WebhookTimeout bounds one delivery attempt. Default 5s.
	WebhookTimeout time.Duration `yaml:"webhook_timeout"`
	// WebhookMaxElapsed bounds all attempts of one delivery (exponential
	// backoff from WebhookInitialInterval). Default 15m.
	WebhookMaxElapsed time.Duration `yaml:"webhook_max_elapsed"`
	// WebhookInitialInterval is the first retry delay; each retry doubles it
	// (with jitter) up to 1m. Default 500ms.
	WebhookInitialInterval time.Duration `yaml:"webhook_initial_interval"`
	// Budgets are the declared budgets.
	Budgets []BudgetConfig `yaml:"budgets"`
}

// BudgetConfig is one entry of `budget.budgets`.
type BudgetConfig struct {
	// ID names the budget in alerts and the API; unique. Required.
	ID string `yaml:"id"`
	// Tenant the budget belongs to; must be a declared tenant. Required.
	Tenant string `yaml:"tenant"`
	// Scope narrows the budget; empty means the whole tenant. Several fields
	// combine with AND.
	Scope Scope `yaml:"scope"`
	// Period is "month" (default) or "quarter", calendar periods in the
	// tenant's time_zone.
	Period string `yaml:"period"`
	// Amount per period, a decimal string, in Unit. Required, > 0.
	Amount string `yaml:"amount"`
	// Unit is "currency" (default: the tenant's reporting currency) or "tokens".
	Unit string `yaml:"unit"`
	// Thresholds in percent of Amount at which an alert fires, once per
	// period each. Default [50, 80, 100]. Values > 0, may exceed 100.
	Thresholds []string `yaml:"thresholds"`
	// Mode is "alert" (default) or "enforce".
	Mode string `yaml:"mode"`
	// Owner is who answers for the budget (an email or team name); carried in
	// the API and webhook payloads.
	Owner string `yaml:"owner"`
	// Projection configures the projected-overrun alert.
	Projection ProjectionConfig `yaml:"projection"`
	// Webhooks receive this budget's alerts.
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// NotReadyPolicy overrides budget.not_ready_policy for this budget:
	// "fail-open" or "fail-closed". While the state is not ready a check is
	// denied when any applicable enforce budget is fail-closed; every
	// admission that an enforce budget let through only because it is
	// fail-open is counted and alerted (kind fail_open). Default: the
	// section's not_ready_policy.
	NotReadyPolicy string `yaml:"not_ready_policy"`
}

// Scope says which events count against a budget.
type Scope struct {
	Workflow string `yaml:"workflow" json:"workflow,omitempty"` // events with this workflow; "" = any
	Team     string `yaml:"team" json:"team,omitempty"`         // events with this team; "" = any
	User     string `yaml:"user" json:"user,omitempty"`         // events with this user_id; "" = any
	// APIKey is the name of a gateway API key (gateway.keys[].name): events
	// the gateway emitted for calls made with that key (attribute
	// tokenmeter.api_key). "" = any.
	APIKey string `yaml:"api_key" json:"api_key,omitempty"`
}

// IsTenant reports whether the scope is the whole tenant.
func (s Scope) IsTenant() bool { return s == Scope{} }

// ProjectionConfig configures the projected-overrun alert: it fires once per
// period when spend so far, extrapolated linearly to the period end, exceeds
// the amount.
type ProjectionConfig struct {
	// Disabled turns the projected-overrun alert off. Default false.
	Disabled bool `yaml:"disabled"`
	// MinElapsed is how much of the period must have passed before a
	// projection is trusted (a run rate from the first hour is noise).
	// Default 72h.
	MinElapsed time.Duration `yaml:"min_elapsed"`
}

// WebhookConfig is one alert receiver.
type WebhookConfig struct {
	// URL to POST alerts to. Required, http or https.
	URL string `yaml:"url"`
	// Secret signs every delivery with HMAC-SHA256 (header
	// X-Tokenmeter-Signature). Put it in env: `secret: ${ACME_HOOK_SECRET}`.
	// Empty: deliveries are not signed.
	Secret string `yaml:"secret"`
	// Secrets are more signing secrets, for rotation without downtime:
	// every delivery carries one signature per secret (Secret first), so a
	// receiver holding either the old or the new secret verifies it. Rotate
	// by adding the new secret here, moving receivers to it, then removing
	// the old one. Put them in env too.
	Secrets []string `yaml:"secrets"`
	// Format is "generic" (default: the alert JSON) or "slack".
	Format string `yaml:"format"`
}

var budgetIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {
	if c.NotReadyPolicy == "" {
		c.NotReadyPolicy = PolicyFailOpen
	}
	if c.ReservationTTL == 0 {
		c.ReservationTTL = 5 * time.Minute
	}
	if c.DedupeWindow == 0 {
		c.DedupeWindow = time.Hour
	}
	if c.ReplayMargin == 0 {
		c.ReplayMargin = time.Hour
	}
	if c.DeliveriesTopic == "" {
		c.DeliveriesTopic = "tokenmeter.budget-deliveries.v1"
	}
	if c.WebhookTimeout == 0 {
		c.WebhookTimeout = 5 * time.Second
	}
	if c.WebhookMaxElapsed == 0 {
		c.WebhookMaxElapsed = 15 * time.Minute
	}
	if c.WebhookInitialInterval == 0 {
		c.WebhookInitialInterval = 500 * time.Millisecond
	}
	for i := range c.Budgets {
		b := &c.Budgets[i]
		if b.Period == "" {
			b.Period = PeriodMonth
		}
		if b.Unit == "" {
			b.Unit = UnitCurrency
		}
		if b.Mode == "" {
			b.Mode = ModeAlert
		}
		if len(b.Thresholds) == 0 {
			b.Thresholds = []string{"50", "80", "100"}
		}
		if b.Projection.MinElapsed == 0 {
			b.Projection.MinElapsed = 72 * time.Hour
		}
		if b.NotReadyPolicy == "" {
			b.NotReadyPolicy = c.NotReadyPolicy
		}
		for j := range b.Webhooks {
			if b.Webhooks[j].Format == "" {
				b.Webhooks[j].Format = FormatGeneric
			}
		}
	}
}

// Validate reports every problem at once, each prefixed with its field path.
// Whether each budget's tenant exists is checked by New, which knows the tenants.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.NotReadyPolicy {
	case PolicyFailOpen, PolicyFailClosed:
	default:
		add("not_ready_policy: %q is not fail-open or fail-closed", c.NotReadyPolicy)
	}
	if c.ReservationTTL <= 0 {
		add("reservation_ttl: must be > 0")
	}
	if c.DedupeWindow < 0 {
		add("dedupe_window: must be > 0")
	}
	if c.ReplayMargin < 0 {
		add("replay_margin: must be >= 0")
	}
	if c.WebhookTimeout <= 0 {
		add("webhook_timeout: must be > 0")
	}
	if c.WebhookMaxElapsed <= 0 {
		add("webhook_max_elapsed: must be > 0")
	}
	if c.WebhookInitialInterval <= 0 {
		add("webhook_initial_interval: must be > 0")
	}
	seen := map[string]bool{}
	for i, b := range c.Budgets {
		p := fmt.Sprintf("budgets[%d]", i)
		if !budgetIDPattern.MatchString(b.ID) {
			add("%s.id: %q must match %s", p, b.ID, budgetIDPattern)
		} else if seen[b.ID] {
			add("%s.id: %q is declared twice", p, b.ID)
		}
		seen[b.ID] = true
		if b.Tenant == "" {
			add("%s.tenant: required", p)
		}
		switch b.Period {
		case PeriodMonth, PeriodQuarter:
		default:
			add("%s.period: %q is not month or quarter", p, b.Period)
		}
		switch b.Unit {
		case UnitCurrency, UnitTokens:
		default:
			add("%s.unit: %q is not currency or tokens", p, b.Unit)
		}
		if a, err := decimal.NewFromString(b.Amount); err != nil {
			add("%s.amount: %q is not a decimal number", p, b.Amount)
		} else if !a.IsPositive() {
			add("%s.amount: must be > 0", p)
		} else if b.Unit == UnitTokens && !a.IsInteger() {
			add("%s.amount: a tokens budget must be a whole number", p)
		}
		tseen := map[string]bool{}
		for j, t := range b.Thresholds {
			d, err := decimal.NewFromString(t)
			if err != nil {
				add("%s.thresholds[%d]: %q is not a decimal number", p, j, t)
				continue
			}
			if !d.IsPositive() {
				add("%s.thresholds[%d]: must be > 0", p, j)
			}
			if tseen[d.String()] {
				add("%s.thresholds[%d]: %s is listed twice", p, j, d)
			}
			tseen[d.String()] = true
		}
		switch b.Mode {
		case ModeAlert, ModeEnforce:
		default:
			add("%s.mode: %q is not alert or enforce", p, b.Mode)
		}
		switch b.NotReadyPolicy {
		case "", PolicyFailOpen, PolicyFailClosed:
		default:
			add("%s.not_ready_policy: %q is not fail-open or fail-closed", p, b.NotReadyPolicy)
		}
		if b.Projection.MinElapsed < 0 {
			add("%s.projection.min_elapsed: must be >= 0", p)
		}
		for j, w := range b.Webhooks {
			wp := fmt.Sprintf("%s.webhooks[%d]", p, j)
			u, err := url.Parse(w.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add("%s.url: %q is not an http(s) URL", wp, w.URL)
			}
			switch w.Format {
			case FormatGeneric, FormatSlack:
			default:
				add("%s.format: %q is not generic or slack", wp, w.Format)
			}
		}
	}
	return errors.Join(errs...)
}

// CheckTenants reports every budget whose tenant is not declared; known
// says whether a tenant id is. New runs it against the tenant registry; a
// root config's Validate can run it against its tenants list so
// `tokenmeter validate` catches the mistake too.
func (c *Config) CheckTenants(known func(id string) bool) error {
	var errs []error
	for i, b := range c.Budgets {
		if b.Tenant != "" && !known(b.Tenant) {
			errs = append(errs, fmt.Errorf("budgets[%d].tenant: %q is not a declared tenant", i, b.Tenant))
		}
	}
	return errors.Join(errs...)
}
