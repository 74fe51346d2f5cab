package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

func init() {
	register("budget-check", "ask the running decision API whether a call may spend (what a gateway does before each model call)", budgetCheckCmd)
}

// budgetCheckCmd is a command-line client of POST /v1/budget/check, for
// operators and the demo: it prints the decision and exits 0 on allow, 3 on deny.
func budgetCheckCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("budget-check", flag.ContinueOnError)
	api := fs.String("api", "http://127.0.0.1:8080", "tokenmeter API base URL")
	token := fs.String("token", envOr("TOKENMETER_TOKEN", ""), "tenant bearer token (env TOKENMETER_TOKEN)")
	workflow := fs.String("workflow", "", "workflow of the planned call")
	team := fs.String("team", "", "team of the planned call")
	cost := fs.String("estimated-cost", "", "estimated cost in the tenant's reporting currency")
	provider := fs.String("provider", "", "provider, with -model and token estimates instead of -estimated-cost")
	model := fs.String("model", "", "model")
	in := fs.Int64("input-tokens", 0, "estimated input tokens")
	out := fs.Int64("output-tokens", 0, "estimated output tokens")
	reserve := fs.Bool("reserve", false, "hold the estimate until the usage event arrives")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		return errors.New("-token (or env TOKENMETER_TOKEN) is required")
	}
	req := map[string]any{"workflow": *workflow, "team": *team, "reserve": *reserve}
	if *cost != "" {
		req["estimated_cost"] = *cost
	} else {
		req["provider"], req["model"] = *provider, *model
		req["estimated_input_tokens"], req["estimated_output_tokens"] = *in, *out
	}
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, *api+"/v1/budget/check", bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Authorization", "Bearer "+*token)
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return fmt.Errorf("decision API %s: %w", *api, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("decision API answered %s: %s", resp.Status, bytes.TrimSpace(raw))
	}
	var ans struct {
		Decision  string `json:"decision"`
		Reason    string `json:"reason"`
		BudgetID  string `json:"budget_id"`
		Remaining string `json:"remaining"`
		Currency  string `json:"currency"`
		Advice    *struct {
			Reason         string `json:"reason"`
			PreferProvider string `json:"prefer_provider"`
			PreferModel    string `json:"prefer_model"`
		} `json:"commitment_advice"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fmt.Errorf("decision API answer: %w", err)
	}
	fmt.Printf("%s: %s (budget %s, remaining %s %s)\n", ans.Decision, ans.Reason, ans.BudgetID, ans.Remaining, ans.Currency)
	if a := ans.Advice; a != nil {
		model := a.PreferModel
		if model == "" {
			model = "(any model)"
		}
		fmt.Printf("advice: prefer %s %s (%s)\n", a.PreferProvider, model, a.Reason)
	}
	if ans.Decision != "allow" {
		return exitStatus(3)
	}
	return nil
}
