package app

import (
	"os"
	"path/filepath"
	"testing"
)

// A pipeline config is outside input too (an operator's file, env
// expansion): loading and validating never panics, whatever the bytes.
func FuzzLoadConfig(f *testing.F) {
	for _, p := range []string{"../../pipelines/demo.yaml", "../../pipelines/production.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("limits: {max_depth: -1, max_tokens: 9223372036854775807}\nhttp: {listen: x}\n"))
	f.Add([]byte("kafka: {embedded: {listen: '0.0.0.0:1', sasl: {username: u}}}\n"))
	f.Add([]byte("roles: [${NOPE:-collector}]\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p)
		if err != nil {
			return
		}
		_ = cfg.Validate()
	})
}
