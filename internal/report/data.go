package report

import (
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/levers"
	"regexp"
	"strconv"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/reconcile"
)

// Period is a calendar quarter or month in the tenant's time zone.
type Period struct {
	Label      string // "2026-Q4" or "2026-11"
	Year       int
	FirstMonth int // 1..12
	LastMonth  int // 1..12
}

var (
	quarterRe = regexp.MustCompile(`^(\d{4})-Q([1-4])$`)
	monthRe   = regexp.MustCompile(`^(\d{4})-(0[1-9]|1[0-2])$`)
)

// ParsePeriod reads "2026-Q4" or "2026-11".
func ParsePeriod(s string) (Period, error) {
	if m := quarterRe.FindStringSubmatch(s); m != nil {
		y, _ := strconv.Atoi(m[1])
		q, _ := strconv.Atoi(m[2])
		return Period{Label: s, Year: y, FirstMonth: 3*q - 2, LastMonth: 3 * q}, nil
	}
	if m := monthRe.FindStringSubmatch(s); m != nil {
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		return Period{Label: s, Year: y, FirstMonth: mo, LastMonth: mo}, nil
	}
	return Period{}, fmt.Errorf("period %q must be YYYY-Qn or YYYY-MM", s)
}

// In is true when month (1..12) of the period's year is in the period.
func (p Period) In(month int) bool { return month >= p.FirstMonth && month <= p.LastMonth }

// MonthLabel is "2026-10" for month m of the period's year.
func (p Period) MonthLabel(m int) string { return fmt.Sprintf("%04d-%02d", p.Year, m) }

// MonthFacts is one month of the tenant, January to the period's last month.
type MonthFacts struct {
	Month    int
	HasUsage bool
	Spend    Value // actual, reporting currency
	Calls    int64
	Forecast Value // approved forecast version (missing: none approved)
	Envelope Value // missing: no envelope in the plan
	Closed   bool  // the month has ended
}

// WorkflowMonth is one workflow in one month.
type WorkflowMonth struct {
	Spend, Outcomes, OutcomeValue Value
	Calls                         int64
	CostPerOutcome                Value // missing without outcomes
	Forecast                      Value
}

// WorkflowFacts is one workflow's months (index 1..12).
type WorkflowFacts struct {
	Name   string
	Months [13]WorkflowMonth
}

// QuarterRate is v_optimisation_rate for one workflow and quarter.
type QuarterRate struct {
	Workflow, Quarter                string // "2026-Q3"
	CostPerOutcome, Previous, Change Value
}

// ComplianceFacts is v_budget_compliance for one month.
type ComplianceFacts struct {
	Month         int
	Status        string
	Budgets       int64
	Within        int64
	Share         Value // 0..1
	OverBudgetIDs []string
}

// AlertFacts is one budget alert in the period.
type AlertFacts struct {
	Time                          time.Time
	BudgetID, Kind, Scope, Detail string
}

// SavingsFacts is one month of savings realised.
type SavingsFacts struct {
	Month   int
	Cache   Value // cache reads against the uncached input price
	Routing Value // calls on cheaper models against the workflow's planned main model (missing without a plan)
}

// ReasonCount is a count per reason.
type ReasonCount struct {
	Reason string
	Count  int64
}

// QualityFacts is the period's data quality.
type QualityFacts struct {
	Unattributed []Value // per month of the period: % of spend without a workflow
	DLQ          []ReasonCount
	// Incomplete counts usage events flagged incomplete by their source; nil
	// when the pipeline records no such flag.
	Incomplete *int64
	Events     int64
}

// VersionFacts is the approved forecast version.
type VersionFacts struct {
	ID, Scenario, ApprovedBy string
	ApprovedAt               time.Time
}

// Data is every fact the standard pages need. Missing facts stay missing
// (Value.OK false, nil pointers) and render as such.
type Data struct {
	Tenant, Currency, TimeZone string
	Period                     Period
	Now                        time.Time
	Sources                    string
	Months                     [13]MonthFacts // 1..12 of Period.Year
	Workflows                  []WorkflowFacts
	Optimisation               []QuarterRate
	Compliance                 []ComplianceFacts
	Alerts                     []AlertFacts
	// Denials per budget by the decision API in the period; nil when they
	// are not recorded in ClickHouse.
	Denials        *[]ReasonCount
	Savings        []SavingsFacts
	Quality        QualityFacts
	Forecast       *VersionFacts
	Reconciliation *reconcile.Report // nil without a plan
	Bridge         []reconcile.BridgeRow
	// Reforecast is the projected year: actuals to date + the model for the
	// rest (missing without a plan).
	Reforecast Value
	// Levers are the period's savings found per lever, largest first; nil
	// when the pack was built without the levers analysis.
	Levers *[]levers.Saving
}

func (d *Data) location() *time.Location {
	if l, err := time.LoadLocation(d.TimeZone); err == nil {
		return l
	}
	return time.UTC
}
