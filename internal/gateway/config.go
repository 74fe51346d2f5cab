package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// Config is the `gateway:` section of a pipeline config.
type Config struct {
	// Listen is the address the proxy serves the provider APIs on
	// (/v1/chat/completions, /v1/responses, /v1/embeddings, /v1/messages).
	// Default "127.0.0.1:8090". Env TOKENMETER_GATEWAY_LISTEN overrides. The
	// ext_authz and auth_request endpoints are on the API server (http.listen).
	Listen string `yaml:"listen"`
	// AuthzGRPCListen, when set, serves Envoy's ext_authz gRPC service
	// (envoy.service.auth.v3.Authorization) on this address, deciding like
	// the HTTP endpoints. Default "" (off).
	AuthzGRPCListen string `yaml:"authz_grpc_listen"`
	// OpenAI is the upstream of the OpenAI-compatible endpoints. Default URL
	// https://api.openai.com.
	OpenAI UpstreamConfig `yaml:"openai"`
	// Anthropic is the upstream of /v1/messages. Default URL https://api.anthropic.com.
	Anthropic UpstreamConfig `yaml:"anthropic"`
	// Gemini is the upstream of Gemini's OpenAI-compatible chat endpoint
	// (/v1beta/openai/chat/completions). Default URL
	// https://generativelanguage.googleapis.com.
	Gemini UpstreamConfig `yaml:"gemini"`
	// Keys are the API keys clients use with the gateway (as the provider
	// key: `Authorization: Bearer KEY` or `x-api-key: KEY`), each mapped to a
	// tenant and, optionally, workflow, team and user. At least one.
	Keys []KeyConfig `yaml:"keys"`
	// HeaderAttribution lets the headers X-Tokenmeter-Workflow, -Team and
	// -User fill the attribution a key does not set (a key's own values are
	// never overridden, so a client cannot move its spend to another
	// budget). Default true. X-Tokenmeter-Prompt-Template, -Prompt-Version,
	// -Application, -Trace-Id and -Conversation-Id are copied into the usage
	// event when this is on.
	HeaderAttribution *bool `yaml:"header_attribution"`
	// BytesPerToken divides the request body's size to estimate its input
	// tokens. The default 1 is an upper bound for byte-level BPE tokenizers
	// (a token is at least one byte, and the JSON around the text is longer
	// than the per-message overhead), so the estimate never undershoots;
	// 3-4 is closer for English but may undershoot. Default 1.
	BytesPerToken int64 `yaml:"bytes_per_token"`
	// DefaultMaxOutputTokens is the output (and reasoning) estimate of a
	// call that sets no max_tokens / max_completion_tokens /
	// max_output_tokens. It is not enforced on the provider, so such calls
	// can exceed their estimate: that excess is the overshoot bound's error
	// term (docs/gateway.md). Default 4096.
	DefaultMaxOutputTokens int64 `yaml:"default_max_output_tokens"`
	// MaxBodyBytes bounds a request body; larger ones get 413. Default 8 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// UpstreamTimeout bounds a whole upstream call, streaming included.
	// Default 10m.
	UpstreamTimeout time.Duration `yaml:"upstream_timeout"`
}

// UpstreamConfig is one provider endpoint.
type UpstreamConfig struct {
	// URL is the provider's base URL (scheme, host, optional path prefix
	// before /v1). http or https.
	URL string `yaml:"url"`
	// APIKey is sent upstream instead of the client's gateway key (put it in
	// env: ${OPENAI_API_KEY}). Empty: no key is sent.
	APIKey string `yaml:"api_key"`
}

// KeyConfig maps one client API key to whom its calls are charged.
type KeyConfig struct {
	// Name identifies the key in usage events (attribute tokenmeter.api_key)
	// and budgets (scope.api_key); never the secret. Required, unique.
	Name string `yaml:"name"`
	// Key is the secret the client sends. Required, unique, ≥ 16 characters.
	Key string `yaml:"key"`
	// Tenant the calls are charged to; a declared tenant. Required.
	Tenant string `yaml:"tenant"`
	// Workflow, Team, User: attribution of every call made with the key
	// ("" = from headers when header_attribution is on).
	Workflow string `yaml:"workflow"`
	Team     string `yaml:"team"`
	User     string `yaml:"user"`
}

var keyNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8090"
	}
	if c.OpenAI.URL == "" {
		c.OpenAI.URL = "https://api.openai.com"
	}
	if c.Anthropic.URL == "" {
		c.Anthropic.URL = "https://api.anthropic.com"
	}
	if c.Gemini.URL == "" {
		c.Gemini.URL = "https://generativelanguage.googleapis.com"
	}
	if c.HeaderAttribution == nil {
		t := true
		c.HeaderAttribution = &t
	}
	if c.BytesPerToken == 0 {
		c.BytesPerToken = 1
	}
	if c.DefaultMaxOutputTokens == 0 {
		c.DefaultMaxOutputTokens = 4096
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 8 << 20
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = 10 * time.Minute
	}
}

// Validate reports every problem at once, each prefixed with its field path.
// Whether each key's tenant exists is checked by New.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Listen == "" {
		add("listen: required")
	}
	for _, u := range []struct {
		name string
		c    UpstreamConfig
	}{{"openai", c.OpenAI}, {"anthropic", c.Anthropic}, {"gemini", c.Gemini}} {
		p, err := url.Parse(u.c.URL)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			add("%s.url: %q is not an http(s) URL", u.name, u.c.URL)
		}
	}
	if len(c.Keys) == 0 {
		add("keys: at least one client key is required")
	}
	names, secrets := map[string]bool{}, map[string]bool{}
	for i, k := range c.Keys {
		p := fmt.Sprintf("keys[%d]", i)
		if !keyNamePattern.MatchString(k.Name) {
			add("%s.name: %q must match %s", p, k.Name, keyNamePattern)
		} else if names[k.Name] {
			add("%s.name: %q is declared twice", p, k.Name)
		}
		names[k.Name] = true
		switch {
		case len(k.Key) < 16:
			add("%s.key: must be at least 16 characters", p)
		case secrets[k.Key]:
			add("%s.key: the same key is declared twice", p)
		}
		secrets[k.Key] = true
		if k.Tenant == "" {
			add("%s.tenant: required", p)
		}
	}
	if c.BytesPerToken < 1 {
		add("bytes_per_token: must be >= 1")
	}
	if c.DefaultMaxOutputTokens < 1 {
		add("default_max_output_tokens: must be >= 1")
	}
	if c.MaxBodyBytes < 1024 {
		add("max_body_bytes: must be >= 1024")
	}
	if c.UpstreamTimeout <= 0 {
		add("upstream_timeout: must be > 0")
	}
	return errors.Join(errs...)
}

// CheckTenants reports every key whose tenant is not declared.
func (c *Config) CheckTenants(known func(id string) bool) error {
	var errs []error
	for i, k := range c.Keys {
		if k.Tenant != "" && !known(k.Tenant) {
			errs = append(errs, fmt.Errorf("keys[%d].tenant: %q is not a declared tenant", i, k.Tenant))
		}
	}
	return errors.Join(errs...)
}
