// Package chx connects to ClickHouse and applies tokenmeter's migrations.
// (Skeleton: being written.)
package chx

import "errors"

// Config is the `clickhouse:` section.
type Config struct {
	// Addr is host:port of the native protocol. Default 127.0.0.1:9000. Env CLICKHOUSE_ADDR overrides.
	Addr string `yaml:"addr"`
	// Database holds every tokenmeter table and view. Default tokenmeter.
	Database string `yaml:"database"`
	// Username, default "default". Env CLICKHOUSE_USER overrides.
	Username string `yaml:"username"`
	// Password, default empty. Env CLICKHOUSE_PASSWORD overrides.
	Password string `yaml:"password"`
}

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9000"
	}
	if c.Database == "" {
		c.Database = "tokenmeter"
	}
	if c.Username == "" {
		c.Username = "default"
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	if c.Database == "" {
		return errors.New("database: is required")
	}
	return nil
}
