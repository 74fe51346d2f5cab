package commit

import (
	"time"

	"github.com/tokenmeter/tokenmeter/internal/budget"
)

// BudgetAdvisor adapts a ledger to the budget decision API's advisory field.
type BudgetAdvisor struct{ Ledger *Ledger }

// AdviseCommitment implements budget.CommitmentAdvisor.
func (b BudgetAdvisor) AdviseCommitment(tenant, provider, model string, at time.Time) *budget.CommitmentAdvice {
	a := b.Ledger.Advise(tenant, provider, model, at)
	if a == nil {
		return nil
	}
	return &budget.CommitmentAdvice{CommitmentID: a.CommitmentID, PreferProvider: a.Provider, PreferModel: a.Model,
		ProjectedUnused: a.ProjectedUnused, Currency: a.Currency, Reason: a.Reason}
}

var _ budget.CommitmentAdvisor = BudgetAdvisor{}
