// Package tenant holds the tenants a pipeline serves: who they are, which
// bearer tokens authenticate them, their reporting currency and time zone.
// Tokens are stored as SHA-256 hashes (or read from env), so a config file
// never holds a usable secret.
package tenant

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

// Config is one entry of the `tenants:` list.
type Config struct {
	// ID is the tenant id stamped on every event the tenant's tokens send.
	ID string `yaml:"id"`
	// ReportingCurrency is the currency costs are also reported in (ISO 4217). Default USD.
	ReportingCurrency string `yaml:"reporting_currency"`
	// TimeZone is the IANA zone calendar periods (month, quarter) are cut in. Default UTC.
	TimeZone string `yaml:"time_zone"`
	// TokenSHA256 lists hex SHA-256 hashes of accepted bearer tokens
	// (`printf %s TOKEN | sha256sum`).
	TokenSHA256 []string `yaml:"token_sha256"`
	// TokenEnv names env variables holding plain bearer tokens; each is hashed at load.
	TokenEnv []string `yaml:"token_env"`
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// Tenant is a resolved tenant.
type Tenant struct {
	ID                string
	ReportingCurrency string
	Location          *time.Location
}

// Registry resolves tokens and tenant ids.
type Registry struct {
	byID    map[string]*Tenant
	byToken map[[32]byte]*Tenant
	ordered []*Tenant
}

// ValidateAll checks every tenant entry and reports each problem with its path.
func ValidateAll(cfgs []Config) error {
	var errs []error
	seen := map[string]bool{}
	for i, c := range cfgs {
		p := fmt.Sprintf("[%d]", i)
		if !idPattern.MatchString(c.ID) {
			errs = append(errs, fmt.Errorf("%s.id: %q must match %s", p, c.ID, idPattern))
		}
		if seen[c.ID] {
			errs = append(errs, fmt.Errorf("%s.id: %q is declared twice", p, c.ID))
		}
		seen[c.ID] = true
		if c.ReportingCurrency != "" && !regexp.MustCompile(`^[A-Z]{3}$`).MatchString(c.ReportingCurrency) {
			errs = append(errs, fmt.Errorf("%s.reporting_currency: %q is not an ISO 4217 code", p, c.ReportingCurrency))
		}
		if _, err := time.LoadLocation(c.TimeZone); err != nil {
			errs = append(errs, fmt.Errorf("%s.time_zone: %w", p, err))
		}
		for j, h := range c.TokenSHA256 {
			if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
				errs = append(errs, fmt.Errorf("%s.token_sha256[%d]: not a hex SHA-256", p, j))
			}
		}
		for j, e := range c.TokenEnv {
			if os.Getenv(e) == "" {
				errs = append(errs, fmt.Errorf("%s.token_env[%d]: env %s is not set", p, j, e))
			}
		}
	}
	return errors.Join(errs...)
}

// NewRegistry builds a registry; call ValidateAll first.
func NewRegistry(cfgs []Config) (*Registry, error) {
	if err := ValidateAll(cfgs); err != nil {
		return nil, err
	}
	r := &Registry{byID: map[string]*Tenant{}, byToken: map[[32]byte]*Tenant{}}
	for _, c := range cfgs {
		loc, _ := time.LoadLocation(c.TimeZone)
		cur := c.ReportingCurrency
		if cur == "" {
			cur = "USD"
		}
		t := &Tenant{ID: c.ID, ReportingCurrency: cur, Location: loc}
		r.byID[c.ID] = t
		r.ordered = append(r.ordered, t)
		for _, h := range c.TokenSHA256 {
			var k [32]byte
			b, _ := hex.DecodeString(h)
			copy(k[:], b)
			r.byToken[k] = t
		}
		for _, e := range c.TokenEnv {
			r.byToken[sha256.Sum256([]byte(os.Getenv(e)))] = t
		}
	}
	return r, nil
}

// Authenticate returns the tenant a bearer token belongs to.
func (r *Registry) Authenticate(token string) (*Tenant, bool) {
	if token == "" {
		return nil, false
	}
	sum := sha256.Sum256([]byte(token))
	// Lookup is by hash: timing reveals nothing about the token itself.
	t, ok := r.byToken[sum]
	return t, ok
}

// BearerToken extracts the token of an Authorization header value
// ("Bearer TOKEN"; the scheme is case-insensitive, RFC 7235), or "" when the
// header does not carry one.
func BearerToken(header string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// AuthenticateHeader returns the tenant of an Authorization header value.
// Every API that tenants call authenticates through it, so they all accept
// the same headers.
func (r *Registry) AuthenticateHeader(header string) (*Tenant, bool) {
	return r.Authenticate(BearerToken(header))
}

// Lookup returns a tenant by id.
func (r *Registry) Lookup(id string) (*Tenant, bool) {
	t, ok := r.byID[id]
	return t, ok
}

// All returns the tenants in config order.
func (r *Registry) All() []*Tenant { return r.ordered }

// HashToken returns the hex SHA-256 of a token, as token_sha256 expects.
func HashToken(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}
