package sink

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Store is what the sink needs from ClickHouse.
type Store interface {
	// Insert writes rows into table as ONE insert block: a MergeTree table
	// and each of its materialized views write it as one part each.
	Insert(ctx context.Context, table string, columns []string, rows [][]any) error
	// HeldOffsets returns, per partition of topic, the highest Kafka offset
	// ClickHouse holds in any table the sink writes.
	HeldOffsets(ctx context.Context, topic string) (map[int32]int64, error)
	// OutcomeKeys returns the (tenant, outcome_id) pairs, with their
	// event_time, of the outcomes table rows read from topic/partition
	// whose event_time is at most window old (the outcome dedupe set).
	OutcomeKeys(ctx context.Context, topic string, partition int32, window time.Duration) (map[outcomeKey]time.Time, error)
	// Ping checks that the server answers.
	Ping(ctx context.Context) error
}

// chStore is the ClickHouse Store over clickhouse-go/v2.
type chStore struct {
	conn driver.Conn
	db   string
	// replicated: read resume offsets only after SYSTEM SYNC REPLICA, so a
	// replica that lags behind the one the previous owner wrote to does not
	// under-report what is stored.
	replicated   bool
	insertQuorum int
}

// NewStore returns the Store for database db on conn (a single server).
func NewStore(conn driver.Conn, db string) Store { return &chStore{conn: conn, db: db} }

// NewClusterStore returns the Store for a replicated cluster (see
// chx.Config.Cluster and InsertQuorum).
func NewClusterStore(conn driver.Conn, db string, insertQuorum int) Store {
	return &chStore{conn: conn, db: db, replicated: true, insertQuorum: insertQuorum}
}

func (s *chStore) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	// Columns are always named, so a table that gained a column keeps
	// taking inserts from this binary.
	if s.insertQuorum > 0 {
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_quorum": s.insertQuorum}))
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+"."+table+" ("+strings.Join(columns, ", ")+")")
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	for i, r := range rows {
		if err := b.Append(r...); err != nil {
			_ = b.Abort()
			return &RowError{Table: table, Row: i, Err: err}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return nil
}

func (s *chStore) HeldOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	if s.replicated {
		if err := s.conn.Exec(ctx, "SYSTEM SYNC REPLICA "+s.db+".sink_offsets"); err != nil {
			return nil, fmt.Errorf("sync replica %s.sink_offsets: %w", s.db, err)
		}
	}
	rows, err := s.conn.Query(ctx, "SELECT kafka_partition, maxMerge(max_offset) FROM "+s.db+".sink_offsets WHERE kafka_topic = ? GROUP BY kafka_partition", topic)
	if err != nil {
		return nil, fmt.Errorf("read %s.sink_offsets: %w", s.db, err)
	}
	defer rows.Close()
	out := map[int32]int64{}
	for rows.Next() {
		var p int32
		var o int64
		if err := rows.Scan(&p, &o); err != nil {
			return nil, fmt.Errorf("read %s.sink_offsets: %w", s.db, err)
		}
		out[p] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.sink_offsets: %w", s.db, err)
	}
	return out, nil
}

func (s *chStore) OutcomeKeys(ctx context.Context, topic string, partition int32, window time.Duration) (map[outcomeKey]time.Time, error) {
	if s.replicated {
		if err := s.conn.Exec(ctx, "SYSTEM SYNC REPLICA "+s.db+".outcomes"); err != nil {
			return nil, fmt.Errorf("sync replica %s.outcomes: %w", s.db, err)
		}
	}
	rows, err := s.conn.Query(ctx, "SELECT tenant, outcome_id, min(event_time) FROM "+s.db+".outcomes WHERE kafka_topic = ? AND kafka_partition = ? AND event_time >= now() - ? GROUP BY tenant, outcome_id",
		topic, partition, uint64(window/time.Second))
	if err != nil {
		return nil, fmt.Errorf("read %s.outcomes ids: %w", s.db, err)
	}
	defer rows.Close()
	out := map[outcomeKey]time.Time{}
	for rows.Next() {
		var k outcomeKey
		var ts time.Time
		if err := rows.Scan(&k.tenant, &k.id, &ts); err != nil {
			return nil, fmt.Errorf("read %s.outcomes ids: %w", s.db, err)
		}
		out[k] = ts
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.outcomes ids: %w", s.db, err)
	}
	return out, nil
}

func (s *chStore) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// RowError is a row the driver refused before anything was sent (a value
// its column cannot hold): a permanent error of that row alone.
type RowError struct {
	Table string
	Row   int
	Err   error
}

func (e *RowError) Error() string {
	return fmt.Sprintf("insert into %s: row %d: %v", e.Table, e.Row, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }
