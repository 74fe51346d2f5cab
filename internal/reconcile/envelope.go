package reconcile

import (
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/forecast"
)

// Phase splits the envelope's annual amount by month (index 1..12).
// even: annual/12 per month, truncated to cents, the remainder in the last
// month; quarterly: each quarter the same way over its three months;
// monthly: as listed. The months always add up exactly to the annual amount.
func Phase(p *forecast.Plan) [13]decimal.Decimal {
	var out [13]decimal.Decimal
	e := p.Envelope
	if e == nil {
		return out
	}
	switch e.Phasing {
	case forecast.PhasingMonthly:
		for m := forecast.Month(1); m <= 12; m++ {
			out[m] = e.Months[m.Label(p.Year)].D
		}
	case forecast.PhasingQuarterly:
		for q := 1; q <= 4; q++ {
			split(e.Quarters[[]string{"", "Q1", "Q2", "Q3", "Q4"}[q]].D, out[3*q-2:3*q+1])
		}
	default:
		split(e.Annual.D, out[1:])
	}
	return out
}

// PhaseAmount phases any annual amount evenly by month (team splits).
func PhaseAmount(annual decimal.Decimal) [13]decimal.Decimal {
	var out [13]decimal.Decimal
	split(annual, out[1:])
	return out
}

func split(total decimal.Decimal, dst []decimal.Decimal) {
	n := int64(len(dst))
	each := total.Div(decimal.NewFromInt(n)).Truncate(2)
	for i := range dst {
		dst[i] = each
	}
	dst[len(dst)-1] = total.Sub(each.Mul(decimal.NewFromInt(n - 1)))
}
