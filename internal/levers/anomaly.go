package levers

import (
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/exact"
)

// Drivers of spend watched for anomalies, per workflow and day.
const (
	DriverTokensPerCall     = "tokens_per_call"    // input + output tokens per call
	DriverCacheHitRate      = "cache_hit_rate"     // cache reads / input tokens
	DriverReasoningShare    = "reasoning_share"    // reasoning / output tokens
	DriverFrontierShare     = "frontier_share"     // share of calls on the workflow's most expensive model class
	DriverCallsPerOutcome   = "calls_per_outcome"  // model calls per business outcome
	DriverUnattributedShare = "unattributed_share" // share of a tenant's spend with no workflow
)

// DetectConfig tunes the detector. The defaults (Defaults) are the ones the
// demo history was measured with (docs/levers.md).
type DetectConfig struct {
	// Window is how many preceding days form the baseline. Default 14.
	Window int
	// MinHistory is how many baseline days a day needs before it can be
	// flagged. Default 7.
	MinHistory int
	// Threshold is the robust z-score, |x - median| / (1.4826 · MAD), at or
	// above which a day is anomalous. Default 5.
	Threshold *big.Rat
	// MinRelative is the smallest relative change |x - median| / |median|
	// that counts, so that a flat baseline (MAD = 0) does not turn noise into
	// alerts. Default 0.25.
	MinRelative *big.Rat
}

// Defaults fills unset fields.
func (c *DetectConfig) Defaults() {
	if c.Window == 0 {
		c.Window = 14
	}
	if c.MinHistory == 0 {
		c.MinHistory = 7
	}
	if c.Threshold == nil {
		c.Threshold = big.NewRat(5, 1)
	}
	if c.MinRelative == nil {
		c.MinRelative = big.NewRat(1, 4)
	}
}

// Point is one day's value of a driver; Value nil means undefined that day
// (no calls, no outcomes), which is neither flagged nor part of a baseline.
type Point struct {
	Day   time.Time
	Value *big.Rat
}

// Anomaly is a run of consecutive anomalous days of one driver in one
// direction: it is reported once, keyed by where it starts.
type Anomaly struct {
	Driver     string
	Start, End time.Time // first and last anomalous day
	Baseline   *big.Rat  // the baseline median on the first day
	Peak       *big.Rat  // the value furthest from its baseline in the run
	Score      *big.Rat  // robust z-score of the peak (nil when MAD was 0)
	Rising     bool
}

// Relative is (Peak - Baseline) / Baseline, nil for a zero baseline.
func (a Anomaly) Relative() *big.Rat { return exact.Quo(exact.Sub(a.Peak, a.Baseline), a.Baseline) }

// Key identifies the anomaly for alerting once: driver and first day.
func (a Anomaly) Key(tenant, workflow string) string {
	return fmt.Sprintf("anomaly/%s/%s/%s/%s", tenant, workflow, a.Driver, a.Start.Format(time.DateOnly))
}

// madScale makes the MAD a consistent estimate of the standard deviation for
// normally distributed values (1.4826 ≈ 1/Φ⁻¹(3/4)).
var madScale = big.NewRat(14826, 10000)

// Detect finds anomalies in one driver's daily series (sorted by day, one
// point per day) against a trailing median/MAD baseline of the Window days
// before each day: a day is anomalous when its robust z-score reaches
// Threshold and its relative change reaches MinRelative. Consecutive
// anomalous days in the same direction are one anomaly. Baselines include
// anomalous days, so a lasting level shift is reported once and stops being
// anomalous when the median has moved to the new level (about Window/2 days).
func Detect(driver string, series []Point, cfg DetectConfig) []Anomaly {
	cfg.Defaults()
	var out []Anomaly
	var cur *Anomaly
	var curDist *big.Rat
	for i, p := range series {
		if p.Value == nil {
			continue
		}
		var base []*big.Rat
		for j := i - 1; j >= 0 && len(base) < cfg.Window; j-- {
			if series[j].Value != nil && series[j].Day.After(p.Day.AddDate(0, 0, -cfg.Window-1)) {
				base = append(base, series[j].Value)
			}
		}
		flag, rising, med, score := false, false, (*big.Rat)(nil), (*big.Rat)(nil)
		if len(base) >= cfg.MinHistory {
			med = median(base)
			dev := exact.Sub(p.Value, med)
			absDev := new(big.Rat).Abs(dev)
			rel := exact.Quo(absDev, new(big.Rat).Abs(med))
			relOK := rel == nil && absDev.Sign() != 0 || rel != nil && rel.Cmp(cfg.MinRelative) >= 0
			mad := madOf(base, med)
			if mad.Sign() == 0 {
				flag = relOK // a flat baseline: any relative change that large stands out
			} else {
				score = exact.Quo(absDev, exact.Mul(madScale, mad))
				flag = relOK && score.Cmp(cfg.Threshold) >= 0
			}
			rising = dev.Sign() > 0
		}
		if !flag {
			if cur != nil {
				out = append(out, *cur)
				cur = nil
			}
			continue
		}
		dist := new(big.Rat).Abs(exact.Sub(p.Value, med))
		if cur != nil && cur.Rising == rising {
			cur.End = p.Day
			if dist.Cmp(curDist) > 0 {
				cur.Peak, cur.Score, curDist = p.Value, score, dist
			}
			continue
		}
		if cur != nil {
			out = append(out, *cur)
		}
		cur = &Anomaly{Driver: driver, Start: p.Day, End: p.Day, Baseline: med, Peak: p.Value, Score: score, Rising: rising}
		curDist = dist
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

func median(xs []*big.Rat) *big.Rat {
	s := append([]*big.Rat(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i].Cmp(s[j]) < 0 })
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return exact.Quo(exact.Add(s[n/2-1], s[n/2]), exact.Int(2))
}

func madOf(xs []*big.Rat, med *big.Rat) *big.Rat {
	devs := make([]*big.Rat, len(xs))
	for i, x := range xs {
		devs[i] = new(big.Rat).Abs(exact.Sub(x, med))
	}
	return median(devs)
}
