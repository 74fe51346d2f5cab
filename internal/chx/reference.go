package chx

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

// TenantRef is a tenant as the reference tables need it.
type TenantRef struct {
	ID                string
	TimeZone          *time.Location
	ReportingCurrency string
}

// BudgetRef is a budget as the reference table stores it.
type BudgetRef struct {
	ID, Tenant, Workflow, Team, User string
	Period                           string // month | quarter
	Amount                           decimal.Decimal
	Unit                             string // currency | tokens
	Mode                             string
	Owner                            string
}

// CalendarYears is how far tenant_months reaches around the sync: calendar
// months from Jan of (now - CalendarYears) to Dec of (now + CalendarYears).
const CalendarYears = 5

// SyncTenants replaces the tenants and tenant_months reference rows: each
// tenant's calendar months with their bounds as UTC instants, computed with
// Go's zone database so daylight saving and odd offsets are right.
func SyncTenants(ctx context.Context, conn driver.Conn, db string, tenants []TenantRef, now time.Time) error {
	syncedAt := now.UTC().Truncate(time.Second)
	tb, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".tenants (tenant, time_zone, reporting_currency, synced_at)")
	if err != nil {
		return fmt.Errorf("sync tenants: %w", err)
	}
	mb, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".tenant_months (tenant, month, quarter, starts_at, ends_at, synced_at)")
	if err != nil {
		_ = tb.Abort()
		return fmt.Errorf("sync tenant_months: %w", err)
	}
	for _, t := range tenants {
		loc := t.TimeZone
		if loc == nil {
			loc = time.UTC
		}
		if err := tb.Append(t.ID, loc.String(), t.ReportingCurrency, syncedAt); err != nil {
			return fmt.Errorf("sync tenants: %w", err)
		}
		y := now.In(loc).Year()
		for year := y - CalendarYears; year <= y+CalendarYears; year++ {
			for mo := time.January; mo <= time.December; mo++ {
				start := time.Date(year, mo, 1, 0, 0, 0, 0, loc)
				end := start.AddDate(0, 1, 0)
				qm := time.Month((int(mo)-1)/3*3 + 1)
				if err := mb.Append(t.ID, dateOnly(year, mo), dateOnly(year, qm), start.UTC(), end.UTC(), syncedAt); err != nil {
					return fmt.Errorf("sync tenant_months: %w", err)
				}
			}
		}
	}
	if err := tb.Send(); err != nil {
		_ = mb.Abort()
		return fmt.Errorf("sync tenants: %w", err)
	}
	if err := mb.Send(); err != nil {
		return fmt.Errorf("sync tenant_months: %w", err)
	}
	return nil
}

// dateOnly is the Date value for a calendar day; the driver writes Date
// from a time's UTC calendar day.
func dateOnly(year int, mo time.Month) time.Time { return time.Date(year, mo, 1, 0, 0, 0, 0, time.UTC) }

// SyncBudgets makes the budgets table match the config: every configured
// budget is written with active=1, and budgets no longer configured are
// written again with active=0 so views ignore them.
func SyncBudgets(ctx context.Context, conn driver.Conn, db string, budgets []BudgetRef, now time.Time) error {
	syncedAt := now.UTC().Truncate(time.Second)
	configured := map[[2]string]bool{}
	for _, b := range budgets {
		configured[[2]string{b.Tenant, b.ID}] = true
	}
	rows, err := conn.Query(ctx, "SELECT tenant, budget_id, workflow, team, user_id, period, amount, unit, mode, owner FROM "+db+".budgets FINAL WHERE active = 1")
	if err != nil {
		return fmt.Errorf("sync budgets: %w", err)
	}
	var stale []BudgetRef
	for rows.Next() {
		var b BudgetRef
		if err := rows.Scan(&b.Tenant, &b.ID, &b.Workflow, &b.Team, &b.User, &b.Period, &b.Amount, &b.Unit, &b.Mode, &b.Owner); err != nil {
			rows.Close()
			return fmt.Errorf("sync budgets: %w", err)
		}
		if !configured[[2]string{b.Tenant, b.ID}] {
			stale = append(stale, b)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sync budgets: %w", err)
	}
	if len(budgets)+len(stale) == 0 {
		return nil
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".budgets (budget_id, tenant, workflow, team, user_id, period, amount, unit, mode, owner, active, synced_at)")
	if err != nil {
		return fmt.Errorf("sync budgets: %w", err)
	}
	add := func(b BudgetRef, active uint8) error {
		return batch.Append(b.ID, b.Tenant, b.Workflow, b.Team, b.User, b.Period, b.Amount, b.Unit, b.Mode, b.Owner, active, syncedAt)
	}
	for _, b := range budgets {
		if err := add(b, 1); err != nil {
			return fmt.Errorf("sync budgets: %w", err)
		}
	}
	for _, b := range stale {
		if err := add(b, 0); err != nil {
			return fmt.Errorf("sync budgets: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("sync budgets: %w", err)
	}
	return nil
}

// Forecast is one monthly forecast of a workflow's spend.
type Forecast struct {
	Tenant   string
	Workflow string
	Month    time.Time // first day of the month
	Amount   decimal.Decimal
	Currency string
}

// ParseForecasts reads a forecast CSV with the header
// `tenant,workflow,month,amount,currency` (month as YYYY-MM, amount a
// decimal string). Every bad line is reported, with its line number.
func ParseForecasts(r io.Reader) ([]Forecast, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = 5
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("forecasts: header: %w", err)
	}
	want := []string{"tenant", "workflow", "month", "amount", "currency"}
	for i, h := range header {
		if strings.TrimSpace(strings.ToLower(h)) != want[i] {
			return nil, fmt.Errorf("forecasts: header must be %s", strings.Join(want, ","))
		}
	}
	var out []Forecast
	var errs []error
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			errs = append(errs, fmt.Errorf("forecasts: %w", err))
			continue
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		f := Forecast{Tenant: rec[0], Workflow: rec[1], Currency: rec[4]}
		m, err := time.Parse("2006-01", rec[2])
		if err != nil {
			errs = append(errs, fmt.Errorf("forecasts: line %d: month %q is not YYYY-MM", line, rec[2]))
		}
		f.Month = m
		f.Amount, err = decimal.NewFromString(rec[3])
		if err != nil || f.Amount.IsNegative() {
			errs = append(errs, fmt.Errorf("forecasts: line %d: amount %q is not a non-negative decimal", line, rec[3]))
		}
		if f.Tenant == "" || f.Workflow == "" {
			errs = append(errs, fmt.Errorf("forecasts: line %d: tenant and workflow are required", line))
		}
		if len(f.Currency) != 3 {
			errs = append(errs, fmt.Errorf("forecasts: line %d: currency %q is not an ISO 4217 code", line, f.Currency))
		}
		out = append(out, f)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ImportForecasts writes forecasts; a later import of the same tenant,
// workflow and month replaces the earlier one.
func ImportForecasts(ctx context.Context, conn driver.Conn, db string, fs []Forecast, source string, now time.Time) error {
	if len(fs) == 0 {
		return nil
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".forecasts (tenant, workflow, month, amount, currency, source, imported_at)")
	if err != nil {
		return fmt.Errorf("import forecasts: %w", err)
	}
	at := now.UTC().Truncate(time.Second)
	for _, f := range fs {
		if err := batch.Append(f.Tenant, f.Workflow, f.Month, f.Amount, f.Currency, source, at); err != nil {
			return fmt.Errorf("import forecasts: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("import forecasts: %w", err)
	}
	return nil
}

// CataloguePrice is one catalogue row and tier, rates per million tokens.
type CataloguePrice struct {
	Provider, Model, Tier, PriceID  string
	Version, Source                 string
	ValidFrom                       time.Time
	ValidTo                         time.Time // zero: open-ended
	Currency                        string
	LongContextThreshold            int64
	Input, CacheRead, CacheWrite    decimal.Decimal
	CacheWrite1h, Output, Reasoning decimal.Decimal
}

// CataloguePrices lists every tier of every effective-dated catalogue entry
// of eng, past and future ones included: the rows of price_catalogue.
func CataloguePrices(eng *pricing.Engine) []CataloguePrice {
	var rows []CataloguePrice
	for _, info := range eng.History() {
		tiers := make([]string, 0, len(info.Tiers))
		for tier := range info.Tiers {
			tiers = append(tiers, tier)
		}
		sort.Strings(tiers)
		for _, tier := range tiers {
			r := info.Tiers[tier]
			rows = append(rows, CataloguePrice{
				Provider: info.Provider, Model: info.Model, Tier: tier, PriceID: info.PriceIDByTier[tier],
				Version: info.Version, Source: info.Source, ValidFrom: info.From, ValidTo: info.To,
				Currency: info.Currency, LongContextThreshold: info.LongContextThreshold,
				Input: r.Input.D, CacheRead: r.CacheRead.D, CacheWrite: r.CacheWrite.D,
				CacheWrite1h: r.CacheWrite1h.D, Output: r.Output.D, Reasoning: r.Reasoning.D,
			})
		}
	}
	return rows
}

// SyncPriceCatalogue writes the catalogue rows; rows no longer in the
// catalogue (other price ids) stay, so stored events keep their rates.
func SyncPriceCatalogue(ctx context.Context, conn driver.Conn, db string, prices []CataloguePrice, now time.Time) error {
	if len(prices) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".price_catalogue (provider, model, tier, price_id, version, source, valid_from, valid_to, currency, long_context_threshold, input_per_mtok, cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok, output_per_mtok, reasoning_per_mtok, synced_at)")
	if err != nil {
		return fmt.Errorf("sync price_catalogue: %w", err)
	}
	at := now.UTC()
	for _, p := range prices {
		var to *time.Time
		if !p.ValidTo.IsZero() {
			v := p.ValidTo.UTC()
			to = &v
		}
		if err := b.Append(p.Provider, p.Model, p.Tier, p.PriceID, p.Version, p.Source, p.ValidFrom.UTC(), to, p.Currency,
			p.LongContextThreshold, p.Input, p.CacheRead, p.CacheWrite, p.CacheWrite1h, p.Output, p.Reasoning, at); err != nil {
			_ = b.Abort()
			return fmt.Errorf("sync price_catalogue: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("sync price_catalogue: %w", err)
	}
	return nil
}

// TenantRefs are the registry's tenants as the reference tables need them
// (`tokenmeter migrate` and the sink's auto_migrate sync the same rows).
func TenantRefs(reg *tenant.Registry) []TenantRef {
	if reg == nil {
		return nil
	}
	var out []TenantRef
	for _, t := range reg.All() {
		out = append(out, TenantRef{ID: t.ID, TimeZone: t.Location, ReportingCurrency: t.ReportingCurrency})
	}
	return out
}
