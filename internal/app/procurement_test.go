package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProcurementCommitmentsValidated(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "commitments.yaml")
	if err := os.WriteFile(bad, []byte("commitments: [{id: x, kind: pledge, provider: openai, amount: '1', start: 2026-01-01, expiry: 2027-01-01}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Config{Path: filepath.Join(dir, "pipeline.yaml"), Procurement: ProcurementConfig{Commitments: "commitments.yaml"}}
	err := c.validateProcurement()
	if err == nil || !strings.Contains(err.Error(), "commitments: commitments[0].kind") {
		t.Fatalf("err = %v", err)
	}
}
