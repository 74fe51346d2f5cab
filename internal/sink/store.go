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
	// Insert writes one table's part of a block as ONE insert, with
	// insert_deduplication_token = token: repeating it with the same rows
	// and token stores nothing twice, in the table and in every
	// materialized view that reads it (see insert.go).
	Insert(ctx context.Context, b TableBatch, token string) error
	// Ledger returns the current ledger entry (sink_ledger, latest version)
	// of every partition of topic that has one.
	Ledger(ctx context.Context, topic string) (map[int32]ledgerEntry, error)
	// WriteLedger writes entries as one insert (one part: all or none).
	WriteLedger(ctx context.Context, entries []ledgerEntry) error
	// LegacyHeldOffsets returns, per partition of topic, the highest offset
	// the old sink_offsets ledger holds (databases written before
	// sink_ledger existed); empty if that table does not exist.
	LegacyHeldOffsets(ctx context.Context, topic string) (map[int32]int64, error)
	// OutcomeKeys returns the (tenant, outcome_id) pairs, with their
	// event_time, of the outcomes table rows read from topic/partition at
	// an offset below `below` whose event_time is at most window old (the
	// outcome dedupe set as it was before that offset).
	OutcomeKeys(ctx context.Context, topic string, partition int32, below int64, window time.Duration) (map[outcomeKey]time.Time, error)
	// Ping checks that the server answers.
	Ping(ctx context.Context) error
}

// TableBatch is one table's part of a block, already built: the insert path
// takes it as is, whatever decoded it. Either Rows (row-wise values, what
// rows.go's decoder produces today; a row the driver refuses is reported as
// a RowError and becomes a dlq row) or Cols (column-wise: Cols[i] is a slice
// of Columns[i]'s Go type, each Len long, appended with the driver's
// columnar API; a decoder that builds columns validates values itself).
type TableBatch struct {
	Table   string
	Columns []string // including the kafka_* columns
	Rows    [][]any
	Cols    []any
	Len     int // rows in Cols
}

// NumRows is the number of rows in the batch.
func (tb TableBatch) NumRows() int {
	if tb.Cols != nil {
		return tb.Len
	}
	return len(tb.Rows)
}

// chStore is the ClickHouse Store over clickhouse-go/v2.
type chStore struct {
	conn driver.Conn
	db   string
	// replicated: read the ledger only after SYSTEM SYNC REPLICA, so a
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

// insertSettings make a repeated block a no-op everywhere it goes:
// the token names the block (not a hash of its bytes), and with
// deduplicate_blocks_in_dependent_materialized_views each view's target
// checks it too, so a retry after a view failed fills in exactly the views
// that are missing it. Tables need non_replicated_deduplication_window (or
// are Replicated) for the check to happen: see the sink_ledger migration.
func (s *chStore) insertSettings(token string) clickhouse.Settings {
	st := clickhouse.Settings{
		"insert_deduplicate":                                 1,
		"insert_deduplication_token":                         token,
		"deduplicate_blocks_in_dependent_materialized_views": 1,
	}
	if s.insertQuorum > 0 {
		st["insert_quorum"] = s.insertQuorum
	}
	return st
}

// Insert names its columns, so a table that gained a column keeps taking
// inserts from this binary.
func (s *chStore) Insert(ctx context.Context, tb TableBatch, token string) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(s.insertSettings(token)))
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+"."+tb.Table+" ("+strings.Join(tb.Columns, ", ")+")")
	if err != nil {
		return fmt.Errorf("insert into %s: %w", tb.Table, err)
	}
	for i, c := range tb.Cols {
		if err := b.Column(i).Append(c); err != nil {
			_ = b.Abort()
			return fmt.Errorf("insert into %s: column %s: %w", tb.Table, tb.Columns[i], err)
		}
	}
	for i, r := range tb.Rows {
		if err := b.Append(r...); err != nil {
			_ = b.Abort()
			return &RowError{Table: tb.Table, Row: i, Err: err}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into %s: %w", tb.Table, err)
	}
	return nil
}

const ledgerColumns = "kafka_topic, kafka_partition, generation, first_offset, last_offset, state, block_id, " +
	"block_topics, block_partitions, block_first, block_last, block_generations, topic_id, sink_group, written_at, version"

func (s *chStore) Ledger(ctx context.Context, topic string) (map[int32]ledgerEntry, error) {
	if s.replicated {
		if err := s.conn.Exec(ctx, "SYSTEM SYNC REPLICA "+s.db+".sink_ledger"); err != nil {
			return nil, fmt.Errorf("sync replica %s.sink_ledger: %w", s.db, err)
		}
	}
	rows, err := s.conn.Query(ctx, "SELECT "+ledgerColumns+" FROM "+s.db+".sink_ledger FINAL WHERE kafka_topic = ?", topic)
	if err != nil {
		return nil, fmt.Errorf("read %s.sink_ledger: %w", s.db, err)
	}
	defer rows.Close()
	out := map[int32]ledgerEntry{}
	for rows.Next() {
		var e ledgerEntry
		var state string
		var topics []string
		var parts []int32
		var first, last []int64
		var gens []uint32
		var at time.Time
		var version uint64
		if err := rows.Scan(&e.Topic, &e.Partition, &e.Generation, &e.First, &e.Last, &state, &e.Block,
			&topics, &parts, &first, &last, &gens, &e.TopicID, &e.Group, &at, &version); err != nil {
			return nil, fmt.Errorf("read %s.sink_ledger: %w", s.db, err)
		}
		e.Done = state == "done"
		for i := range topics {
			e.Ranges = append(e.Ranges, offsetRange{tp: topicPartition{topics[i], parts[i]}, first: first[i], last: last[i], gen: gens[i]})
		}
		out[e.Partition] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.sink_ledger: %w", s.db, err)
	}
	return out, nil
}

func (s *chStore) WriteLedger(ctx context.Context, entries []ledgerEntry) error {
	if s.insertQuorum > 0 {
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_quorum": s.insertQuorum}))
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".sink_ledger ("+ledgerColumns+")")
	if err != nil {
		return fmt.Errorf("write %s.sink_ledger: %w", s.db, err)
	}
	now := time.Now()
	for _, e := range entries {
		state := "pending"
		if e.Done {
			state = "done"
		}
		n := len(e.Ranges)
		topics, parts, first, last, gens := make([]string, n), make([]int32, n), make([]int64, n), make([]int64, n), make([]uint32, n)
		for i, r := range e.Ranges {
			topics[i], parts[i], first[i], last[i], gens[i] = r.tp.topic, r.tp.partition, r.first, r.last, r.gen
		}
		if err := b.Append(e.Topic, e.Partition, e.Generation, e.First, e.Last, state, e.Block,
			topics, parts, first, last, gens, e.TopicID, e.Group, now, e.version()); err != nil {
			_ = b.Abort()
			return fmt.Errorf("write %s.sink_ledger: %w", s.db, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("write %s.sink_ledger: %w", s.db, err)
	}
	return nil
}

func (s *chStore) LegacyHeldOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'sink_offsets'", s.db).Scan(&n); err != nil {
		return nil, fmt.Errorf("read %s.sink_offsets: %w", s.db, err)
	}
	out := map[int32]int64{}
	if n == 0 {
		return out, nil
	}
	rows, err := s.conn.Query(ctx, "SELECT kafka_partition, maxMerge(max_offset) FROM "+s.db+".sink_offsets WHERE kafka_topic = ? GROUP BY kafka_partition", topic)
	if err != nil {
		return nil, fmt.Errorf("read %s.sink_offsets: %w", s.db, err)
	}
	defer rows.Close()
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

func (s *chStore) OutcomeKeys(ctx context.Context, topic string, partition int32, below int64, window time.Duration) (map[outcomeKey]time.Time, error) {
	if s.replicated {
		if err := s.conn.Exec(ctx, "SYSTEM SYNC REPLICA "+s.db+".outcomes"); err != nil {
			return nil, fmt.Errorf("sync replica %s.outcomes: %w", s.db, err)
		}
	}
	rows, err := s.conn.Query(ctx, "SELECT tenant, outcome_id, min(event_time) FROM "+s.db+".outcomes WHERE kafka_topic = ? AND kafka_partition = ? AND kafka_offset < ? AND event_time >= now() - ? GROUP BY tenant, outcome_id",
		topic, partition, below, uint64(window/time.Second))
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

// Permanent says retrying cannot help (internal/retry's classification).
func (e *RowError) Permanent() bool { return true }
