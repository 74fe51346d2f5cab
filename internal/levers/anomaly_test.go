package levers

import (
	"math/big"
	"testing"
	"time"
)

// noisy returns n days of values around level, within ±10%, from a fixed
// linear congruential sequence (deterministic, no floats).
func noisy(start time.Time, n int, level int64, seed uint32) []Point {
	out := make([]Point, n)
	x := seed
	for i := range out {
		x = x*1664525 + 1013904223
		// -10% .. +10% in steps of 1% of level.
		pct := int64(x>>16)%21 - 10
		out[i] = Point{Day: start.AddDate(0, 0, i), Value: big.NewRat(level*(100+pct), 100)}
	}
	return out
}

var day0 = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)

func TestDetectSteadyTrafficHasNoAnomaly(t *testing.T) {
	for seed := uint32(1); seed <= 20; seed++ {
		if got := Detect(DriverTokensPerCall, noisy(day0, 90, 1000, seed), DetectConfig{}); len(got) != 0 {
			t.Fatalf("seed %d: %d anomalies on steady traffic, first %+v", seed, len(got), got[0])
		}
	}
}

func TestDetectLevelShiftOnce(t *testing.T) {
	s := append(noisy(day0, 30, 1000, 7), noisy(day0.AddDate(0, 0, 30), 30, 2000, 8)...)
	got := Detect(DriverTokensPerCall, s, DetectConfig{})
	if len(got) != 1 {
		t.Fatalf("%d anomalies, want 1: %+v", len(got), got)
	}
	a := got[0]
	if !a.Start.Equal(day0.AddDate(0, 0, 30)) || !a.Rising {
		t.Fatalf("anomaly %+v", a)
	}
	if a.Relative().Cmp(big.NewRat(1, 2)) < 0 {
		t.Fatalf("relative %s, want about +100%%", a.Relative().FloatString(3))
	}
	if a.Key("acme", "support") != "anomaly/acme/support/tokens_per_call/2026-07-31" {
		t.Fatalf("key %s", a.Key("acme", "support"))
	}
}

func TestDetectDropAndSpike(t *testing.T) {
	s := noisy(day0, 60, 1000, 3)
	s[40].Value = big.NewRat(300, 1) // cache hit rate collapses for one day
	got := Detect(DriverCacheHitRate, s, DetectConfig{})
	if len(got) != 1 || got[0].Rising || !got[0].Start.Equal(s[40].Day) || !got[0].End.Equal(s[40].Day) {
		t.Fatalf("%+v", got)
	}
	// Undefined days (no calls) are skipped, not zeros.
	s = noisy(day0, 60, 1000, 4)
	s[20].Value, s[21].Value = nil, nil
	if got := Detect(DriverCacheHitRate, s, DetectConfig{}); len(got) != 0 {
		t.Fatalf("gaps flagged: %+v", got)
	}
}

func TestDetectNeedsHistory(t *testing.T) {
	s := noisy(day0, 10, 1000, 5)
	s[3].Value = big.NewRat(5000, 1) // only 3 days of history before it
	if got := Detect(DriverTokensPerCall, s, DetectConfig{}); len(got) != 0 {
		t.Fatalf("flagged without history: %+v", got)
	}
}

// The likely cause may lie a day or two before the anomaly's first day.
func TestCauseLooksBackAFewDays(t *testing.T) {
	day := func(i int) time.Time { return day0.AddDate(0, 0, i) }
	var days []dayRow
	for i := 0; i < 14; i++ {
		v := "t@v1"
		if i >= 10 {
			v = "t@v2" // new version from day 10
		}
		days = append(days, dayRow{day: day(i), versions: []string{v}, models: []string{"p/m"}, topModel: "p/m"})
	}
	if got := causeOf(days, Anomaly{Start: day(11)}); got != "new prompt version t@v2" {
		t.Fatalf("a day after the change: %q", got)
	}
	if got := causeOf(days, Anomaly{Start: day(13)}); got != "no prompt, model or routing change seen in the 3 days up to it" {
		t.Fatalf("four days after: %q", got)
	}
}
