package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// TestNewKafkaDataDirDoesNotSkipEvents is issue 17's "a reset Kafka log
// silently skips events", on the embedded broker: 50 events are stored,
// the broker's data directory is replaced by an empty one (the database
// stays), and new events arrive at offsets ClickHouse already holds for
// the old log. The sink must not resume at those offsets and skip the new
// events: it stops the partitions, /readyz names the `tokenmeter sink
// reset-offsets` command, and after the operator runs it the new events
// are stored, each once.
func TestNewKafkaDataDirDoesNotSkipEvents(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	p := newPipeline(t, db, "")
	t.Setenv("KAFKA_BROKERS", "") // the embedded broker, not the shared one
	b := fmt.Sprintf("  embedded: {listen: %q, data_dir: %q}\n  topics:", freeAddr(t), filepath.Join(p.dir, "kafka-a"))
	p.editConfigRe(`(?m)^  brokers: \[.*\]\n  topics:`, b)
	p.command("migrate", p.config)

	roles := []string{"collector", "processor", "sink"}
	proc := p.start(roles...)
	if n := p.postBatch(t, "old", 0, 50); n != 50 {
		t.Fatalf("acknowledged %d of 50", n)
	}
	proc.stop(t)
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".priced_usage").Scan(&n); err != nil || n != 50 {
		t.Fatalf("after the first run priced_usage holds %d (%v), want 50", n, err)
	}

	// A new, empty log under the same database.
	p.editConfig(filepath.Join(p.dir, "kafka-a"), filepath.Join(p.dir, "kafka-b"))
	proc = p.startRoleNoWait(strings.Join(roles, ","), p.api)
	var sinkCheck string
	eventually(t, time.Minute, func(ctx context.Context) error {
		resp, err := http.Get("http://" + p.api + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			Checks map[string]string `json:"checks"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body.Checks["sink"], "tokenmeter sink reset-offsets") {
			return fmt.Errorf("readyz %d, sink %q; want the stopped partitions and the command", resp.StatusCode, body.Checks["sink"])
		}
		sinkCheck = body.Checks["sink"]
		return nil
	})
	if got := p.postBatch(t, "new", 0, 20); got != 20 {
		t.Fatalf("acknowledged %d of 20 on the new log", got)
	}
	time.Sleep(2 * time.Second) // nothing of the new log may be stored while stopped
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".priced_usage").Scan(&n); err != nil || n != 50 {
		t.Fatalf("with the partitions stopped priced_usage holds %d (%v), want the old 50", n, err)
	}
	proc.stop(t)

	// The operator accepts the new log of every stopped partition.
	cmd := regexp.MustCompile(`--topic (\S+) --partition (\d+)`)
	seen := map[string]bool{}
	for _, m := range cmd.FindAllStringSubmatch(sinkCheck, -1) {
		if seen[m[0]] {
			continue
		}
		seen[m[0]] = true
		out := p.command("sink", "reset-offsets", p.config, "--topic", m[1], "--partition", m[2], "--to", "earliest")
		if !strings.Contains(out, "resumes at offset 0") {
			t.Fatalf("reset-offsets output: %s", out)
		}
	}
	if len(seen) == 0 {
		t.Fatalf("no partition named in %q", sinkCheck)
	}
	proc = p.start(roles...)
	eventually(t, time.Minute, func(ctx context.Context) error {
		var n, ids uint64
		if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM "+db+".priced_usage").Scan(&n, &ids); err != nil {
			return err
		}
		if n != 70 || ids != 70 {
			return fmt.Errorf("priced_usage %d rows, %d ids; want 70 (50 old + 20 new)", n, ids)
		}
		return nil
	})
	proc.stop(t)
}
