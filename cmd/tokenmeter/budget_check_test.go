package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBudgetCheckExitStatusFollowsDecision(t *testing.T) {
	var got map[string]any
	decision := "deny"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/budget/check" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		_, _ = w.Write([]byte(`{"decision":"` + decision + `","reason":"budget b exhausted","budget_id":"b","remaining":"-1","currency":"HKD"}`))
	}))
	defer srv.Close()

	err := budgetCheckCmd(context.Background(), []string{"-api", srv.URL, "-token", "tok", "-workflow", "legal", "-estimated-cost", "2.5"})
	var status exitStatus
	if !errors.As(err, &status) || status != 3 {
		t.Fatalf("deny: want exit status 3, got %v", err)
	}
	if got["workflow"] != "legal" || got["estimated_cost"] != "2.5" {
		t.Fatalf("request body %v", got)
	}
	decision = "allow"
	if err := budgetCheckCmd(context.Background(), []string{"-api", srv.URL, "-token", "tok", "-workflow", "legal", "-estimated-cost", "2.5"}); err != nil {
		t.Fatalf("allow: %v", err)
	}
}

func TestFlagsMayFollowConfig(t *testing.T) {
	for _, args := range [][]string{
		{"../../pipelines/demo.yaml", "-table", "priced_usage"},
		{"-table", "priced_usage", "../../pipelines/demo.yaml"},
		{"-table", "priced_usage", "-config", "../../pipelines/demo.yaml"},
	} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		table := fs.String("table", "", "")
		cfg, err := loadConfig(fs, args)
		if err != nil || *table != "priced_usage" || cfg.ClickHouse.Database != "tokenmeter" {
			t.Errorf("%v: table %q, err %v", args, *table, err)
		}
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	if _, err := loadConfig(fs, []string{"a.yaml", "b.yaml"}); err == nil {
		t.Error("two CONFIG files accepted")
	}
}
