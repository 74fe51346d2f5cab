// Package pricing prices usage: effective-dated catalogues, contracts and FX.
// (Skeleton: being written.)
package pricing

// Config is the `pricing:` section: where the catalogue, contracts and FX rates live.
type Config struct {
	// Catalogues are price catalogue YAML files, merged in order.
	Catalogues []string `yaml:"catalogues"`
	// Contracts is a YAML file of negotiated terms. Optional.
	Contracts string `yaml:"contracts"`
	// FX is a YAML or CSV file of dated currency rates. Optional when every tenant reports in USD.
	FX string `yaml:"fx"`
}

// Validate reports every problem at once.
func (c *Config) Validate() error { return nil }
