package budget

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

type oneAdvice struct{ gotModel string }

func (o *oneAdvice) AdviseCommitment(tenant, provider, model string, at time.Time) *CommitmentAdvice {
	o.gotModel = model
	if model == "gpt-4o" {
		return nil
	}
	return &CommitmentAdvice{CommitmentID: "oa-commit", PreferProvider: "openai", PreferModel: "gpt-4o",
		ProjectedUnused: decimal.NewFromInt(380), Currency: "USD", Reason: "380 USD of oa-commit projected unused"}
}

func TestCheckCarriesCommitmentAdvice(t *testing.T) {
	r, srv := apiServer(t)
	adv := &oneAdvice{}
	r.SetCommitmentAdvisor(adv)
	var cr CheckResponse
	code := call(t, "POST", srv.URL+"/v1/budget/check", "acme-token", map[string]any{"workflow": "legal", "provider": "openai",
		"model": "gpt-4o-mini", "estimated_input_tokens": 10, "estimated_output_tokens": 10}, &cr)
	if code != 200 || cr.Decision != DecisionAllow || cr.CommitmentAdvice == nil || cr.CommitmentAdvice.PreferModel != "gpt-4o" ||
		cr.CommitmentAdvice.ProjectedUnused.String() != "380" {
		t.Fatalf("%d %+v advice %+v", code, cr, cr.CommitmentAdvice)
	}
	cr = CheckResponse{}
	code = call(t, "POST", srv.URL+"/v1/budget/check", "acme-token", map[string]any{"workflow": "legal", "provider": "openai",
		"model": "gpt-4o", "estimated_input_tokens": 10, "estimated_output_tokens": 10}, &cr)
	if code != 200 || cr.CommitmentAdvice != nil || adv.gotModel != "gpt-4o" {
		t.Fatalf("covered request: %+v", cr.CommitmentAdvice)
	}
}
