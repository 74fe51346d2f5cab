package chx

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"
)

// Check is one consistency check of the stored data.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// Verify checks that the database is consistent with exactly-once storage:
// no Kafka record stored twice, the offset ledger agrees with the tables,
// and every rollup adds up to the raw events. Analysts' numbers rest on
// these; a failure points at the partition or rollup to look at.
func Verify(ctx context.Context, conn driver.Conn, db string) ([]Check, error) {
	var out []Check
	// 1. No record twice: (topic, partition, offset) is unique in every table.
	for _, t := range []string{"priced_usage", "outcomes", "dlq", "alerts"} {
		var rows, distinct uint64
		q := "SELECT count(), uniqExact(kafka_topic, kafka_partition, kafka_offset) FROM " + db + "." + t
		if err := conn.QueryRow(ctx, q).Scan(&rows, &distinct); err != nil {
			return nil, fmt.Errorf("verify %s: %w", t, err)
		}
		out = append(out, Check{Name: "no duplicate Kafka records in " + t, OK: rows == distinct,
			Detail: fmt.Sprintf("%d rows, %d distinct topic/partition/offset", rows, distinct)})
	}
	// 2. The ledger counts exactly the rows the tables hold, per partition.
	q := `SELECT kafka_topic, kafka_partition, sum(n) AS stored, sum(l) AS ledger FROM (
		SELECT CAST(kafka_topic AS String) AS kafka_topic, kafka_partition, count() AS n, toUInt64(0) AS l FROM ` + db + `.priced_usage GROUP BY kafka_topic, kafka_partition
		UNION ALL SELECT CAST(kafka_topic AS String) AS kafka_topic, kafka_partition, count() AS n, toUInt64(0) AS l FROM ` + db + `.outcomes GROUP BY kafka_topic, kafka_partition
		UNION ALL SELECT CAST(kafka_topic AS String) AS kafka_topic, kafka_partition, count() AS n, toUInt64(0) AS l FROM ` + db + `.dlq GROUP BY kafka_topic, kafka_partition
		UNION ALL SELECT CAST(kafka_topic AS String) AS kafka_topic, kafka_partition, count() AS n, toUInt64(0) AS l FROM ` + db + `.alerts GROUP BY kafka_topic, kafka_partition
		UNION ALL SELECT kafka_topic, kafka_partition, toUInt64(0) AS n, countMerge(rows) AS l FROM ` + db + `.sink_offsets GROUP BY kafka_topic, kafka_partition
	) GROUP BY kafka_topic, kafka_partition HAVING stored != ledger ORDER BY kafka_topic, kafka_partition`
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("verify sink_offsets: %w", err)
	}
	ledger := Check{Name: "offset ledger matches the stored rows per partition", OK: true, Detail: "all partitions agree"}
	for rows.Next() {
		var topic string
		var p int32
		var stored, l uint64
		if err := rows.Scan(&topic, &p, &stored, &l); err != nil {
			rows.Close()
			return nil, fmt.Errorf("verify sink_offsets: %w", err)
		}
		if ledger.OK {
			ledger.OK, ledger.Detail = false, ""
		}
		ledger.Detail += fmt.Sprintf("%s[%d]: %d rows stored, ledger %d; ", topic, p, stored, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out = append(out, ledger)
	// 3. Rollups add up to the raw events.
	var calls uint64
	var usd, billed decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT count(), sum(effective_cost), sum(billed_effective_cost) FROM "+db+".priced_usage").Scan(&calls, &usd, &billed); err != nil {
		return nil, fmt.Errorf("verify priced_usage: %w", err)
	}
	for _, r := range []string{"usage_minute", "usage_hourly", "usage_daily"} {
		var c uint64
		var u, b decimal.Decimal
		if err := conn.QueryRow(ctx, "SELECT sum(calls), sum(effective_cost), sum(billed_effective_cost) FROM "+db+"."+r).Scan(&c, &u, &b); err != nil {
			return nil, fmt.Errorf("verify %s: %w", r, err)
		}
		out = append(out, Check{Name: r + " adds up to priced_usage", OK: c == calls && u.Equal(usd) && b.Equal(billed),
			Detail: fmt.Sprintf("%d calls / %s / %s billed (raw: %d / %s / %s)", c, u, b, calls, usd, billed)})
	}
	var orecs, oc uint64
	if err := conn.QueryRow(ctx, "SELECT count(), sum(count) FROM "+db+".outcomes").Scan(&orecs, &oc); err != nil {
		return nil, fmt.Errorf("verify outcomes: %w", err)
	}
	var drecs, dc uint64
	if err := conn.QueryRow(ctx, "SELECT sum(records), sum(outcomes) FROM "+db+".outcomes_daily").Scan(&drecs, &dc); err != nil {
		return nil, fmt.Errorf("verify outcomes_daily: %w", err)
	}
	out = append(out, Check{Name: "outcomes_daily adds up to outcomes", OK: orecs == drecs && oc == dc,
		Detail: fmt.Sprintf("%d records / %d outcomes (raw: %d / %d)", drecs, dc, orecs, oc)})
	// 4. No block of the sink left pending: a pending sink_ledger entry is a
	// block that may be stored only partly until a sink takes the partition
	// and writes it again (internal/sink/ledger.go). Seconds old is normal
	// while a sink runs; older points at a partition no sink consumes.
	prows, err := conn.Query(ctx, "SELECT kafka_topic, kafka_partition, first_offset, last_offset, written_at FROM "+db+".sink_ledger FINAL WHERE state = 'pending' AND written_at < now64(3) - INTERVAL 5 MINUTE ORDER BY kafka_topic, kafka_partition")
	if err != nil {
		return nil, fmt.Errorf("verify sink_ledger: %w", err)
	}
	pending := Check{Name: "no sink block pending for more than 5 minutes", OK: true, Detail: "none"}
	for prows.Next() {
		var topic string
		var p int32
		var first, last int64
		var at time.Time
		if err := prows.Scan(&topic, &p, &first, &last, &at); err != nil {
			prows.Close()
			return nil, fmt.Errorf("verify sink_ledger: %w", err)
		}
		if pending.OK {
			pending.OK, pending.Detail = false, ""
		}
		pending.Detail += fmt.Sprintf("%s[%d]: offsets %d..%d pending since %s (start a sink for the partition); ", topic, p, first, last, at.UTC().Format(time.RFC3339))
	}
	prows.Close()
	if err := prows.Err(); err != nil {
		return nil, err
	}
	out = append(out, pending)
	return out, nil
}
