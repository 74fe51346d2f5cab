package levers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/exact"
)

// KindAnomaly is the Alert.Kind of a driver anomaly on tokenmeter.alerts.v1.
const KindAnomaly = "anomaly"

// Alert is the anomaly as an alert on tokenmeter.alerts.v1, in the budget
// alerts' shape so that the alerts table, the board pack and webhook
// receivers take it as they are:
//
//	alert_id   anomaly/TENANT/WORKFLOW/DRIVER/FIRST-DAY (once per anomaly)
//	budget_id  anomaly/WORKFLOW/DRIVER
//	period     the first anomalous day; kind "anomaly"; mode "alert"
//	threshold  the change in percent (peak against baseline)
//	spend      the estimated cost impact (0 where not estimated)
//	amount     the baseline value of the driver
//	top        workflow, driver and likely cause as contributors
func (a DriverAnomaly) Alert(now time.Time) event.Alert {
	pct := decimal.Zero
	if r := a.Relative(); r != nil {
		pct = exact.Round(exact.Mul(r, exact.Int(100)), 2)
	}
	impact := decimal.Zero
	if a.ImpactKnown {
		impact = a.Impact
	}
	return event.Alert{
		AlertID: a.Key(a.Tenant, a.Workflow), Tenant: a.Tenant, BudgetID: "anomaly/" + a.Workflow + "/" + a.Driver,
		Period: a.Start.Format(time.DateOnly), Kind: KindAnomaly, Threshold: pct, Spend: impact,
		Amount: exact.Round(a.Baseline, 6), Currency: a.Currency, Mode: "alert",
		Top: []event.Contributor{
			{Kind: "workflow", Name: a.Workflow, Spend: impact},
			{Kind: "driver", Name: a.Driver, Spend: exact.Round(a.Peak, 6)},
			{Kind: "cause", Name: a.Cause, Spend: decimal.Zero},
		},
		TriggeredAt: now.UTC(), EventTime: a.End.UTC(),
	}
}

// Unpublished drops the anomalies whose alert ClickHouse already holds, so
// a daily run publishes each anomaly once.
func (s Source) Unpublished(ctx context.Context, tenant string, as []DriverAnomaly) ([]DriverAnomaly, error) {
	rows, err := s.Conn.Query(ctx, "SELECT DISTINCT alert_id FROM "+s.DB+".alerts WHERE tenant = ? AND kind = ?", tenant, KindAnomaly)
	if err != nil {
		return nil, fmt.Errorf("levers: published anomalies: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		seen[id] = true
	}
	var out []DriverAnomaly
	for _, a := range as {
		if !seen[a.Key(a.Tenant, a.Workflow)] {
			out = append(out, a)
		}
	}
	return out, rows.Err()
}

// Produce writes the alerts to topic, keyed by tenant so one tenant's alerts
// stay in order, and waits for the broker's acknowledgement.
func Produce(ctx context.Context, cl *kgo.Client, topic string, alerts []event.Alert) error {
	recs := make([]*kgo.Record, 0, len(alerts))
	for _, a := range alerts {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(a.Tenant), Value: b})
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}
