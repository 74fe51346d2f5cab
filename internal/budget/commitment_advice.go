package budget

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// CommitmentAdvice is an advisory field of the decision API's answer: a
// provider and model whose commitment or prepaid credit is projected to go
// partly unused, so a gateway routing among equivalent models may prefer it.
// It never changes the decision.
type CommitmentAdvice struct {
	CommitmentID    string          `json:"commitment_id"`
	PreferProvider  string          `json:"prefer_provider"`
	PreferModel     string          `json:"prefer_model,omitempty"` // empty: any model of the provider
	ProjectedUnused decimal.Decimal `json:"projected_unused"`
	Currency        string          `json:"currency"`
	Reason          string          `json:"reason"`
}

// CommitmentAdvisor answers for one planned request
// (internal/procurement/commit implements it from its ledger).
type CommitmentAdvisor interface {
	AdviseCommitment(tenant, provider, model string, at time.Time) *CommitmentAdvice
}

// SetCommitmentAdvisor makes check answers carry commitment advice. Call it
// before Start.
func (r *Budget) SetCommitmentAdvisor(a CommitmentAdvisor) { r.commitments = a }

func (r *Budget) adviseCommitment(t *tenant.Tenant, cr *CheckRequest) *CommitmentAdvice {
	if r.commitments == nil || cr.Provider == "" {
		return nil
	}
	return r.commitments.AdviseCommitment(t.ID, cr.Provider, cr.Model, r.now())
}
