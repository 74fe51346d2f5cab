package pricing

import (
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// TestFXStaleFlag: an event more than fx_max_age after its rate's date is
// priced with that rate and flagged; within the age it is not.
func TestFXStaleFlag(t *testing.T) {
	cat := &CatalogueFile{Version: "t", Currency: "USD", Models: []ModelEntry{{Provider: "p", Model: "m", ValidFrom: "2026-01-01",
		Prices: map[string]Rates{"standard": {Input: Amount{D: decimal.RequireFromString("1"), Set: true}, Output: Amount{D: decimal.RequireFromString("1"), Set: true}}}}}}
	fx := &FXFile{Rates: []FXRate{{Date: "2026-11-01", Base: "USD", Quote: "HKD", Rate: Amount{D: decimal.RequireFromString("7.8"), Set: true}}}}
	e, err := New([]*CatalogueFile{cat}, nil, nil, fx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at    string
		stale bool
	}{
		{"2026-11-01T10:00:00Z", false},
		{"2026-11-05T23:59:59Z", false}, // 4 days: the default 96h
		{"2026-11-06T00:00:00Z", true},
		{"2026-12-01T09:00:00Z", true}, // December at November's rate
	} {
		ev := event.UsageEvent{Tenant: "t", Provider: "p", Model: "m", EventTime: at(c.at), InputTokens: 1, OutputTokens: 1}
		var out event.PricedUsageEvent
		out.UsageEvent = ev
		if err := e.Price(&ev, "HKD", &out); err != nil {
			t.Fatal(err)
		}
		if out.FXStale != c.stale || out.FXDate != "2026-11-01" {
			t.Errorf("%s: fx_stale %v fx_date %s, want %v 2026-11-01", c.at, out.FXStale, out.FXDate, c.stale)
		}
	}
	// A configured age of 30 days: December 1st is not stale yet.
	e.fxMaxAgeDays = (&Config{FXMaxAge: 30 * 24 * time.Hour}).fxMaxAgeDays()
	ev := event.UsageEvent{Tenant: "t", Provider: "p", Model: "m", EventTime: at("2026-12-01T09:00:00Z"), InputTokens: 1, OutputTokens: 1}
	var out event.PricedUsageEvent
	if err := e.Price(&ev, "HKD", &out); err != nil || out.FXStale {
		t.Errorf("fx_max_age 30d: stale %v err %v", out.FXStale, err)
	}
}

func TestCheckFXCoverage(t *testing.T) {
	fx := &FXFile{Rates: []FXRate{
		{Date: "2026-10-01", Base: "USD", Quote: "HKD"}, {Date: "2026-11-01", Base: "USD", Quote: "HKD"},
		{Date: "2026-12-01", Base: "USD", Quote: "EUR"},
	}}
	ps := CheckFXCoverage(fx, Config{}, at("2026-12-01T08:00:00Z"))
	if len(ps) != 1 || ps[0].Severity != SeverityWarning || ps[0].Where != "fx USD/HKD" ||
		!strings.Contains(ps[0].Message, "2026-11-01, before today 2026-12-01") || !strings.Contains(ps[0].Message, "from 2026-11-06") {
		t.Fatalf("%v", ps)
	}
	if err := (&Config{FXMaxAge: time.Hour}).Validate(); err == nil {
		t.Error("fx_max_age 1h accepted")
	}
}
