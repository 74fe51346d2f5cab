package forecast

import (
	"fmt"
	"sort"

	"github.com/shopspring/decimal"
)

// Knobs of the sensitivity grid.
const (
	KnobAdoption        = "adoption"
	KnobSessions        = "sessions_per_user"
	KnobCallsPerSession = "calls_per_session"
	KnobTokens          = "tokens_per_call"
	KnobPrice           = "price"
)

// Knobs lists every knob in display order.
var Knobs = []string{KnobAdoption, KnobSessions, KnobCallsPerSession, KnobTokens, KnobPrice}

// DefaultSteps are the grid's changes in percent.
var DefaultSteps = []int{-30, -20, -10, 0, 10, 20, 30}

// Cell is the year's total with one knob changed by Percent.
type Cell struct {
	Percent int
	Total   decimal.Decimal
	Change  decimal.Decimal // Total - base
}

// KnobRow is one knob across the steps; Swing = max - min total.
type KnobRow struct {
	Knob  string
	Cells []Cell
	Swing decimal.Decimal
}

// Sensitivity is the grid, rows ranked by swing (the driver that moves the
// total most first).
type Sensitivity struct {
	Base decimal.Decimal
	Rows []KnobRow
}

func scaleFor(knob string, k decimal.Decimal) (Scale, error) {
	switch knob {
	case KnobAdoption:
		return Scale{Adoption: k}, nil
	case KnobSessions:
		return Scale{SessionsPerUser: k}, nil
	case KnobCallsPerSession:
		return Scale{CallsPerSession: k}, nil
	case KnobTokens:
		return Scale{TokensPerCall: k}, nil
	case KnobPrice:
		return Scale{Price: k}, nil
	}
	return Scale{}, fmt.Errorf("unknown knob %q", knob)
}

// RunSensitivity builds the plan once per knob and step. A step of p
// percent multiplies the knob by 1 + p/100 (adoption stays capped at 100% of
// eligible users, so near full adoption it moves the total less than linearly).
func RunSensitivity(p *Plan, eng Pricer, knobs []string, steps []int) (*Sensitivity, error) {
	base, err := Build(p, eng, Options{})
	if err != nil {
		return nil, err
	}
	out := &Sensitivity{Base: base.Total()}
	for _, kn := range knobs {
		row := KnobRow{Knob: kn}
		lo, hi := out.Base, out.Base
		for _, st := range steps {
			k := one.Add(decimal.New(int64(st), -2))
			sc, err := scaleFor(kn, k)
			if err != nil {
				return nil, err
			}
			total := out.Base
			if st != 0 {
				if k.IsZero() {
					k = decimal.New(1, -30) // -100%: Build treats 0 as "unset"
					sc, _ = scaleFor(kn, k)
				}
				r, err := Build(p, eng, Options{Scale: sc})
				if err != nil {
					return nil, err
				}
				total = r.Total()
			}
			row.Cells = append(row.Cells, Cell{Percent: st, Total: total, Change: total.Sub(out.Base)})
			if total.LessThan(lo) {
				lo = total
			}
			if total.GreaterThan(hi) {
				hi = total
			}
		}
		row.Swing = hi.Sub(lo)
		out.Rows = append(out.Rows, row)
	}
	sort.SliceStable(out.Rows, func(i, j int) bool { return out.Rows[i].Swing.GreaterThan(out.Rows[j].Swing) })
	return out, nil
}
