package forecast

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// Clone copies the plan deeply enough that ApplyLever never changes p.
func (p *Plan) Clone() *Plan {
	c := *p
	c.Workflows = make([]Workflow, len(p.Workflows))
	for i, w := range p.Workflows {
		w.Adoption = cloneAmounts(w.Adoption)
		mm := make(map[string]map[string]pricing.Amount, len(w.ModelMix))
		for k, v := range w.ModelMix {
			mm[k] = cloneAmounts(v)
		}
		w.ModelMix = mm
		w.Levers = append([]Lever(nil), w.Levers...)
		c.Workflows[i] = w
	}
	return &c
}

func cloneAmounts(m map[string]pricing.Amount) map[string]pricing.Amount {
	out := make(map[string]pricing.Amount, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Workflow finds a workflow by name.
func (p *Plan) Workflow(name string) *Workflow {
	for i := range p.Workflows {
		if p.Workflows[i].Name == name {
			return &p.Workflows[i]
		}
	}
	return nil
}

func amt(d decimal.Decimal) pricing.Amount { return pricing.Amount{D: d, Set: true} }

// ApplyLever returns a copy of p with lever l pulled on workflow wf, and the
// monthly caps to pass to Build (budget_cap). A cut removes the workflow's
// users; a defer pushes its adoption curve back; route moves l.Share of every
// month's calls to l.To; shorten_prompts removes l.Percent of input tokens
// per call (cache writes in proportion); cache_hit_rate raises the cached
// share of input to l.HitRate (never lowers it).
func ApplyLever(p *Plan, caps map[string]decimal.Decimal, wf string, l Lever) (*Plan, map[string]decimal.Decimal, error) {
	c := p.Clone()
	nc := make(map[string]decimal.Decimal, len(caps)+1)
	for k, v := range caps {
		nc[k] = v
	}
	w := c.Workflow(wf)
	if w == nil {
		return nil, nil, fmt.Errorf("no workflow %q in the plan", wf)
	}
	switch l.Kind {
	case LeverCut:
		w.EligibleUsers = amt(decimal.Zero)
	case LeverDefer:
		w.adoptionShift += l.Months
	case LeverRoute:
		s := l.Share.D
		for k, mix := range w.ModelMix {
			n := make(map[string]pricing.Amount, len(mix)+1)
			for m, sh := range mix {
				n[m] = amt(sh.D.Mul(one.Sub(s)))
			}
			n[l.To] = amt(n[l.To].D.Add(s))
			w.ModelMix[k] = n
		}
	case LeverShorten:
		k := one.Sub(l.Percent.D.Div(hundred)) // percent/100 is exact
		w.Tokens.Input = amt(w.Tokens.Input.D.Mul(k))
		w.Tokens.CacheWrite = amt(w.Tokens.CacheWrite.D.Mul(k))
	case LeverCache:
		if l.HitRate.D.GreaterThan(w.Tokens.CachedShare.D) {
			w.Tokens.CachedShare = amt(l.HitRate.D)
			// cache writes must still fit in the uncached input
			if un := w.Tokens.Input.D.Mul(one.Sub(l.HitRate.D)); w.Tokens.CacheWrite.D.GreaterThan(un) {
				w.Tokens.CacheWrite = amt(un)
			}
		}
	case LeverBudgetCap:
		if old, ok := nc[wf]; !ok || l.MonthlyCap.D.LessThan(old) {
			nc[wf] = l.MonthlyCap.D
		}
	default:
		return nil, nil, fmt.Errorf("unknown lever kind %q", l.Kind)
	}
	return c, nc, nil
}

// Describe says what a lever does, for tables.
func (l Lever) Describe(wf string) string {
	switch l.Kind {
	case LeverCut:
		return fmt.Sprintf("cut %s", wf)
	case LeverDefer:
		return fmt.Sprintf("defer %s by %d month(s)", wf, l.Months)
	case LeverRoute:
		return fmt.Sprintf("route %s%% of %s calls to %s", l.Share.D.Mul(hundred).String(), wf, l.To)
	case LeverShorten:
		return fmt.Sprintf("shorten %s prompts by %s%%", wf, l.Percent)
	case LeverCache:
		return fmt.Sprintf("raise %s cache hit rate to %s%%", wf, l.HitRate.D.Mul(hundred).String())
	case LeverBudgetCap:
		return fmt.Sprintf("cap %s at %s a month", wf, l.MonthlyCap)
	}
	return l.Kind
}
