package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPricesCheckFailsOnBadCatalogue(t *testing.T) {
	var out bytes.Buffer
	err := pricesCheck([]string{"../../internal/pricing/testdata/bad_catalogue.yaml"}, &out)
	if err == nil {
		t.Fatalf("check passed a broken catalogue:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "overlaps") || !strings.Contains(out.String(), "gap after") {
		t.Errorf("output lacks overlap/gap findings:\n%s", out.String())
	}
	out.Reset()
	if err := pricesCheck([]string{"-config", "../../pipelines/demo.yaml"}, &out); err != nil {
		t.Errorf("shipped demo pricing does not check: %v\n%s", err, out.String())
	}
}

func TestPricesImportFXMerges(t *testing.T) {
	dir := t.TempDir()
	yamlPath := filepath.Join(dir, "fx.yaml")
	csv1 := filepath.Join(dir, "a.csv")
	os.WriteFile(csv1, []byte("date,base,quote,rate\n2026-11-27,USD,HKD,7.7800\n"), 0o644)
	csv2 := filepath.Join(dir, "b.csv")
	os.WriteFile(csv2, []byte("date,base,quote,rate\n2026-11-27,USD,HKD,7.7800\n2026-11-28,USD,HKD,7.7812\n"), 0o644)
	conflict := filepath.Join(dir, "c.csv")
	os.WriteFile(conflict, []byte("date,base,quote,rate\n2026-11-28,USD,HKD,7.9\n"), 0o644)

	var out bytes.Buffer
	if err := pricesImportFX([]string{"-o", yamlPath, csv1}, &out); err != nil {
		t.Fatal(err)
	}
	if err := pricesImportFX([]string{"-o", yamlPath, csv2}, &out); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(yamlPath)
	if got := strings.Count(string(b), "date:"); got != 2 {
		t.Fatalf("merged file has %d rates, want 2:\n%s", got, b)
	}
	if !strings.Contains(string(b), `"7.7800"`) {
		t.Errorf("rate precision not kept as written:\n%s", b)
	}
	if err := pricesImportFX([]string{"-o", yamlPath, conflict}, &out); err == nil {
		t.Error("a different rate for a recorded date was accepted")
	}
}
