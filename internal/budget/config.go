package budget

// Config is the `budget:` section of a pipeline config.
type Config struct {
}

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {}

// Validate reports every problem at once, each prefixed with its field path.
func (c *Config) Validate() error { return nil }
