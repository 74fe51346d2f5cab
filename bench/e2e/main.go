// Command e2e is the whole-pipeline benchmark on the real services: the built
// tokenmeter binary (collector, processor and sink as three processes, so the
// CPU of each role can be read from /proc) on Apache Kafka (KAFKA_BROKERS) and
// ClickHouse (CLICKHOUSE_ADDR, HTTP on CLICKHOUSE_HTTP), driven over HTTP.
//
//	go run ./bench/e2e                      # or: make bench-e2e
//
// Phases, each on its own topics (unique prefix) and databases (dropped at the end):
//
//  1. throughput: -events events in NDJSON batches of -batch from -senders
//     concurrent clients (closed loop, as fast as the collector accepts); the
//     clock stops when ClickHouse answers count() = N from priced_usage AND
//     sum(calls) = N from the usage_minute rollup.
//  2. latency: an open-loop load at -rate events/s for -duration, one batch
//     every -batch/-rate seconds; each event carries its batch's scheduled send
//     time. A poller asks ClickHouse every -poll for the per-batch row counts in
//     priced_usage, then for the rollup total; a batch counts as queryable at
//     the end of the first poll where all its rows are in priced_usage and the
//     rollup holds at least every row that poll saw (so it is queryable in both).
//     Latency = that moment − scheduled send time: an upper bound, too high by
//     at most one poll interval plus one query.
//  3. ClickHouse Kafka engine, side by side: the same N priced events (flattened
//     to the priced_usage columns by exporting them from ClickHouse as
//     JSONEachRow) are produced to a topic, one record per event, before a
//     Kafka engine table exists; the group's offsets are set to the start, then
//     a Kafka engine table and, in a copy of the tokenmeter schema, four
//     materialized views on it are created: one into priced_usage and the three
//     rollup views with the SELECTs of schemas/clickhouse/003_rollups.sql
//     (on the Kafka table, as a Kafka-engine user would). The clock runs until count() and
//     sum(calls) reach N there.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const token = "bench-e2e-token"

var (
	flagEvents     = flag.Int("events", 200000, "events in the throughput phase")
	flagBatch      = flag.Int("batch", 1000, "events per HTTP request in the throughput phase")
	flagSenders    = flag.Int("senders", 4, "concurrent HTTP clients in the throughput phase")
	flagRate       = flag.Int("rate", 2000, "events/s in the latency phase")
	flagLatBatch   = flag.Int("latency-batch", 500, "events per request in the latency phase")
	flagDuration   = flag.Duration("duration", 40*time.Second, "length of the latency phase")
	flagPoll       = flag.Duration("poll", 100*time.Millisecond, "ClickHouse poll interval in the latency phase")
	flagPartitions = flag.Int("partitions", 6, "partitions of every topic")
	flagPhases     = flag.String("phases", "throughput,latency,kafka-engine", "phases to run")
	flagKeep       = flag.Bool("keep", false, "keep databases and topics")
	flagWait       = flag.Duration("max-wait", 180*time.Second, "give up a phase after this long")
	flagSinkExtra  = flag.String("sink-yaml", "", "extra YAML keys for the sink section, e.g. 'batch_rows: 50000'")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/e2e:", err)
		os.Exit(1)
	}
}

type bench struct {
	dir, bin, config string
	brokers          []string
	chAddr, chHTTP   string
	prefix, db, dbKE string
	kcl              *kgo.Client
	adm              *kadm.Client
	procs            map[string]*proc
	apiAddr, procAPI string
}

type proc struct {
	name string
	cmd  *exec.Cmd
	addr string
	done chan error
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run() error {
	b := &bench{
		brokers: strings.Split(env("KAFKA_BROKERS", "127.0.0.1:19092"), ","),
		chAddr:  env("CLICKHOUSE_ADDR", "127.0.0.1:9000"),
		chHTTP:  env("CLICKHOUSE_HTTP", "127.0.0.1:8123"),
		procs:   map[string]*proc{},
	}
	stamp := time.Now().UTC().Format("0102150405")
	b.prefix = "tmbench." + stamp + "."
	b.db = "tmbench_" + stamp
	b.dbKE = "tmbench_" + stamp + "_ke"
	dir, err := os.MkdirTemp("", "tokenmeter-bench-e2e")
	if err != nil {
		return err
	}
	b.dir = dir
	defer os.RemoveAll(dir)
	b.bin = filepath.Join(dir, "tokenmeter")
	fmt.Printf("# bench/e2e %s UTC, nproc %d, loadavg %s\n", time.Now().UTC().Format(time.DateTime), nproc(), loadavg())
	fmt.Printf("# topics %s*, databases %s, %s\n", b.prefix, b.db, b.dbKE)
	build := exec.Command("go", "build", "-o", b.bin, "./cmd/tokenmeter")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	b.kcl, err = kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		return err
	}
	defer b.kcl.Close()
	b.adm = kadm.NewClient(b.kcl)
	defer b.cleanup()
	if err := b.writeConfig(); err != nil {
		return err
	}
	if out, err := exec.Command(b.bin, "migrate", b.config).CombinedOutput(); err != nil {
		return fmt.Errorf("migrate: %w\n%s", err, out)
	}
	// Three processes, one role each.
	for _, role := range []string{"sink", "processor", "collector"} {
		if err := b.start(role); err != nil {
			return err
		}
	}
	b.apiAddr = b.procs["collector"].addr
	b.procAPI = b.procs["processor"].addr
	phases := *flagPhases
	if strings.Contains(phases, "throughput") {
		if err := b.throughput(); err != nil {
			return fmt.Errorf("throughput: %w", err)
		}
	}
	if strings.Contains(phases, "latency") {
		if err := b.latency(); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}
	if strings.Contains(phases, "kafka-engine") {
		if err := b.kafkaEngine(); err != nil {
			fmt.Printf("kafka-engine: FAILED: %v\n", err)
		}
	}
	return nil
}

func (b *bench) writeConfig() error {
	abs, _ := filepath.Abs("internal/e2e/testdata")
	sum := sha256.Sum256([]byte(token))
	sinkExtra := ""
	if *flagSinkExtra != "" {
		sinkExtra = "\n  " + *flagSinkExtra
	}
	cfg := fmt.Sprintf(`
http: {listen: "127.0.0.1:0"}
kafka:
  brokers: [%[1]s]
  topics:
    usage: %[2]susage
    priced: %[2]spriced
    outcomes: %[2]soutcomes
    dlq: %[2]sdlq
    alerts: %[2]salerts
    partitions: %[3]d
clickhouse: {addr: "%[4]s", database: %[5]s}
telemetry: {log_level: warn}
tenants:
  - id: bench
    reporting_currency: HKD
    time_zone: Asia/Hong_Kong
    token_sha256: ["%[6]s"]
pricing:
  catalogues: [%[7]s/catalogue.yaml]
  fx: %[7]s/fx.csv
collector:
  otlp: {grpc_listen: "", http_listen: ""}
processor:
  group: %[2]sprocessor
  transactional_id: %[2]sprocessor-txn
sink:
  group: %[2]ssink%[8]s
`, strings.Join(b.brokers, ", "), b.prefix, *flagPartitions, b.chAddr, b.db, hex.EncodeToString(sum[:]), abs, sinkExtra)
	b.config = filepath.Join(b.dir, "pipeline.yaml")
	return os.WriteFile(b.config, []byte(cfg), 0o600)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:28931"
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (b *bench) start(role string) error {
	p := &proc{name: role, addr: freeAddr(), done: make(chan error, 1)}
	p.cmd = exec.Command(b.bin, "run", b.config)
	p.cmd.Env = append(os.Environ(), "TOKENMETER_ROLES="+role, "TOKENMETER_HTTP_LISTEN="+p.addr,
		"KAFKA_BROKERS="+strings.Join(b.brokers, ","), "CLICKHOUSE_ADDR="+b.chAddr)
	logf, err := os.Create(filepath.Join(b.dir, role+".log"))
	if err != nil {
		return err
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() { p.done <- p.cmd.Wait(); logf.Close() }()
	b.procs[role] = p
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			log, _ := os.ReadFile(filepath.Join(b.dir, role+".log"))
			return fmt.Errorf("%s exited during start-up: %v\n%s", role, err, log)
		default:
		}
		if resp, err := http.Get("http://" + p.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready in 60s", role)
}

func (b *bench) cleanup() {
	for _, role := range []string{"collector", "processor", "sink"} {
		if p := b.procs[role]; p != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Kill()
			}
		}
	}
	if *flagKeep {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + b.dbKE + ".mv_from_kafka",
		"DROP TABLE IF EXISTS " + b.dbKE + ".priced_kafka",
		"DROP DATABASE IF EXISTS " + b.dbKE,
		"DROP DATABASE IF EXISTS " + b.db,
	} {
		if _, err := b.ch(ctx, q); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
	}
	topics, err := b.adm.ListTopics(ctx)
	if err == nil {
		var mine []string
		for _, t := range topics.Names() {
			if strings.HasPrefix(t, b.prefix) {
				mine = append(mine, t)
			}
		}
		if _, err := b.adm.DeleteTopics(ctx, mine...); err != nil {
			fmt.Fprintln(os.Stderr, "delete topics:", err)
		}
	}
	groups, err := b.adm.ListGroups(ctx)
	if err == nil {
		var mine []string
		for _, g := range groups.Groups() {
			if strings.HasPrefix(g, b.prefix) {
				mine = append(mine, g)
			}
		}
		_, _ = b.adm.DeleteGroups(ctx, mine...)
	}
}

// ch runs one query over ClickHouse's HTTP interface and returns the body.
func (b *bench) ch(ctx context.Context, q string) (string, error) {
	u := "http://" + b.chHTTP + "/"
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(q))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("clickhouse: %s: %s", strings.TrimSpace(string(body)), abbrev(q))
	}
	return string(body), nil
}

func abbrev(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func (b *bench) chInts(ctx context.Context, q string) ([]int64, error) {
	out, err := b.ch(ctx, q)
	if err != nil {
		return nil, err
	}
	var r []int64
	for _, f := range strings.Fields(out) {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse %q: %w", f, err)
		}
		r = append(r, v)
	}
	return r, nil
}

// counts returns count() of db.priced_usage and sum(calls) of db.usage_minute
// for events whose id starts with prefix (the rollup has no event ids: it is
// filtered by the phase's workflows).
func (b *bench) counts(ctx context.Context, db, wf string) (raw, rollup int64, err error) {
	v, err := b.chInts(ctx, fmt.Sprintf(
		"SELECT (SELECT count() FROM %[1]s.priced_usage WHERE workflow LIKE '%[2]s%%'), "+
			"(SELECT toInt64(sum(calls)) FROM %[1]s.usage_minute WHERE workflow LIKE '%[2]s%%')", db, wf))
	if err != nil {
		return 0, 0, err
	}
	if len(v) != 2 {
		return 0, 0, fmt.Errorf("counts: %v", v)
	}
	return v[0], v[1], nil
}

// ---- CPU accounting ----

type cpuSnap map[string]float64 // seconds of user+system CPU per process

func procCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+2:])
	// fields after ")": state(0) ... utime is field 14 of the line = index 11 here, stime 12.
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ = 100 on Linux
}

// servicePID is the pid of the ClickHouse or Kafka this run uses: $env, else
// the pid file deploy/local wrote for this checkout, else the first process
// named comm (on a machine shared by several checkouts that may be another
// one's: set the env or use deploy/local).
func servicePID(env, pidFile, comm, arg string) int {
	if v, err := strconv.Atoi(os.Getenv(env)); err == nil && v > 0 {
		return v
	}
	if b, err := os.ReadFile(pidFile); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v > 0 {
			return v
		}
	}
	return findPID(comm, arg)
}

// findPID returns the first process whose comm is comm and whose command line contains arg.
func findPID(comm, arg string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(c)) != comm {
			continue
		}
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cl), arg) {
			return pid
		}
	}
	return 0
}

func (b *bench) cpu() cpuSnap {
	s := cpuSnap{}
	for name, p := range b.procs {
		s[name] = procCPU(p.cmd.Process.Pid)
	}
	if pid := servicePID("CLICKHOUSE_PID", ".local/clickhouse/clickhouse-server.pid", "clickhouse-serv", ""); pid > 0 {
		s["clickhouse"] = procCPU(pid)
	}
	if pid := servicePID("KAFKA_PID", ".local/kafka/kafka.pid", "java", "kafka.Kafka"); pid > 0 {
		s["kafka"] = procCPU(pid)
	}
	s["harness"] = procCPU(os.Getpid())
	return s
}

func (s cpuSnap) report(before cpuSnap, wall time.Duration, events int) string {
	var names []string
	for k := range s {
		names = append(names, k)
	}
	sort.Strings(names)
	var w strings.Builder
	total := 0.0
	for _, n := range names {
		d := s[n] - before[n]
		total += d
		fmt.Fprintf(&w, "  cpu %-10s %7.1f s  %4.0f%% of one core  %7.1f µs/event\n", n, d, 100*d/wall.Seconds(), 1e6*d/float64(events))
	}
	fmt.Fprintf(&w, "  cpu %-10s %7.1f s  %4.0f%% of one core (2 cores = 200%%)\n", "all", total, 100*total/wall.Seconds())
	return w.String()
}

func nproc() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// ---- events ----

// appendEvent appends one usage event as an NDJSON line. Workflows are
// "<phase>-w0".."<phase>-w11" so each phase can be counted apart, also in rollups.
func appendEvent(dst []byte, id string, at time.Time, wf string, i int) []byte {
	dst = append(dst, `{"event_id":"`...)
	dst = append(dst, id...)
	dst = append(dst, `","event_time":"`...)
	dst = at.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","provider":"testco","model":"tm-small","workflow":"`...)
	dst = append(dst, wf...)
	dst = append(dst, `-w`...)
	dst = strconv.AppendInt(dst, int64(i%12), 10)
	dst = append(dst, `","user_id":"u`...)
	dst = strconv.AppendInt(dst, int64(i%97), 10)
	dst = append(dst, `","trace_id":"t`...)
	dst = strconv.AppendInt(dst, int64(i/4), 10)
	dst = append(dst, `","input_tokens":1000,"cache_read_input_tokens":200,"output_tokens":500,"reasoning_tokens":100}`...)
	dst = append(dst, '\n')
	return dst
}

// post sends one NDJSON body, retrying 429/503 (the collector's back-pressure).
func (b *bench) post(ctx context.Context, body []byte, n int) error {
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+b.apiAddr+"/v1/usage", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == 202:
			if !bytes.Contains(out, []byte(fmt.Sprintf(`"accepted":%d`, n))) {
				return fmt.Errorf("not all accepted: %s", abbrev(string(out)))
			}
			return nil
		case (resp.StatusCode == 429 || resp.StatusCode == 503) && attempt < 100:
			time.Sleep(200 * time.Millisecond)
		default:
			return fmt.Errorf("POST /v1/usage: %d %s", resp.StatusCode, abbrev(string(out)))
		}
	}
}

// processed reads tokenmeter_processor_events_total (all outcomes) from the processor's /metrics.
func (b *bench) processed() int64 {
	resp, err := http.Get("http://" + b.procAPI + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var n float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "tokenmeter_processor_events_total") {
			if f := strings.Fields(l); len(f) >= 2 {
				v, _ := strconv.ParseFloat(f[len(f)-1], 64)
				n += v
			}
		}
	}
	return int64(n)
}

// ---- phase 1: throughput ----

func (b *bench) throughput() error {
	n, bs := *flagEvents, *flagBatch
	var bodies [][]byte
	base := time.Now().UTC().Add(-time.Minute) // events in the previous minutes: rollups by minute
	for i := 0; i < n; i += bs {
		var body []byte
		for j := i; j < i+bs && j < n; j++ {
			body = appendEvent(body, "T"+strconv.Itoa(j), base.Add(time.Duration(j)*time.Millisecond/10), "tput", j)
		}
		bodies = append(bodies, body)
	}
	fmt.Printf("\n## throughput: %d events, %d per request (%d bytes), %d senders, %d partitions, loadavg %s\n",
		n, bs, len(bodies[0]), *flagSenders, *flagPartitions, loadavg())
	ctx, cancel := context.WithTimeout(context.Background(), *flagWait)
	defer cancel()
	cpu0 := b.cpu()
	t0 := time.Now()
	var httpDone atomic.Int64
	var sendErr error
	var mu sync.Mutex
	work := make(chan []byte, len(bodies))
	for _, body := range bodies {
		work <- body
	}
	close(work)
	var wg sync.WaitGroup
	for s := 0; s < *flagSenders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range work {
				if err := b.post(ctx, body, bytes.Count(body, []byte{'\n'})); err != nil {
					mu.Lock()
					sendErr = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); httpDone.Store(int64(time.Since(t0))) }()
	var tProc, tRaw time.Duration
	var lastRaw int64
	type sample struct {
		at  time.Duration
		raw int64
	}
	var samples []sample
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("not done in %s: raw %d of %d (send error %v)", *flagWait, lastRaw, n, sendErr)
		case <-tick.C:
		}
		mu.Lock()
		err := sendErr
		mu.Unlock()
		if err != nil {
			return err
		}
		if tProc == 0 && b.processed() >= int64(n) {
			tProc = time.Since(t0)
		}
		raw, rollup, err := b.counts(ctx, b.db, "tput")
		if err != nil {
			return err
		}
		lastRaw = raw
		now := time.Since(t0)
		samples = append(samples, sample{now, raw})
		if tRaw == 0 && raw >= int64(n) {
			tRaw = now
		}
		if raw >= int64(n) && rollup >= int64(n) {
			wall := now
			cpu1 := b.cpu()
			if raw != int64(n) || rollup != int64(n) {
				return fmt.Errorf("raw %d, rollup %d: want %d", raw, rollup, n)
			}
			hd := time.Duration(httpDone.Load())
			fmt.Printf("  HTTP accepted (202, acks=all) all %d events after %.2f s: %.0f events/s\n", n, hd.Seconds(), float64(n)/hd.Seconds())
			if tProc > 0 {
				fmt.Printf("  processor committed all after %.2f s: %.0f events/s\n", tProc.Seconds(), float64(n)/tProc.Seconds())
			}
			fmt.Printf("  priced_usage count = %d after %.2f s; usage_minute sum(calls) = %d after %.2f s\n", raw, tRaw.Seconds(), rollup, wall.Seconds())
			fmt.Printf("  END TO END (HTTP -> queryable in raw and rollup): %.0f events/s\n", float64(n)/wall.Seconds())
			// Sink rate while it had work: from the first rows to the last.
			var first sample
			for _, s := range samples {
				if s.raw > 0 {
					first = s
					break
				}
			}
			if tRaw > first.at {
				fmt.Printf("  sink: rows visible from %.2f s to %.2f s: %.0f rows/s while draining\n", first.at.Seconds(), tRaw.Seconds(),
					float64(int64(n)-first.raw)/(tRaw-first.at).Seconds())
			}
			fmt.Printf("  loadavg at end %s\n", loadavg())
			fmt.Print(cpu1.report(cpu0, wall, n))
			parts, _ := b.ch(ctx, fmt.Sprintf("SELECT count(), toInt64(avg(rows)) FROM system.parts WHERE database='%s' AND table='priced_usage' AND active", b.db))
			fmt.Printf("  priced_usage active parts / avg rows: %s", parts)
			return nil
		}
	}
}

// ---- phase 2: latency ----

func (b *bench) latency() error {
	rate, bs, dur := *flagRate, *flagLatBatch, *flagDuration
	interval := time.Duration(float64(bs) / float64(rate) * float64(time.Second))
	nb := int(dur / interval)
	fmt.Printf("\n## latency: %d events/s open loop, %d events every %s, %s (%d batches), poll %s, loadavg %s\n",
		rate, bs, interval, dur, nb, *flagPoll, loadavg())
	ctx, cancel := context.WithTimeout(context.Background(), dur+*flagWait)
	defer cancel()
	sched := make([]time.Time, nb)
	visible := make([]time.Time, nb)
	var sendErr atomic.Value
	cpu0 := b.cpu()
	start := time.Now().Add(200 * time.Millisecond)
	var wg sync.WaitGroup
	go func() {
		for k := 0; k < nb; k++ {
			at := start.Add(time.Duration(k) * interval)
			sched[k] = at
			time.Sleep(time.Until(at))
			var body []byte
			for j := 0; j < bs; j++ {
				body = appendEvent(body, fmt.Sprintf("L%05d-%d", k, j), at, "lat", k*bs+j)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := b.post(ctx, body, bs); err != nil {
					sendErr.Store(err)
				}
			}()
		}
	}()
	done := 0
	lowest := 0 // lowest batch not yet visible
	var polls, pollNanos int64
	for done < nb {
		if err, _ := sendErr.Load().(error); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("only %d of %d batches visible", done, nb)
		}
		time.Sleep(*flagPoll)
		ps := time.Now()
		out, err := b.ch(ctx, fmt.Sprintf(
			"SELECT toUInt32(substring(event_id, 2, 5)) AS k, count() FROM %s.priced_usage "+
				"WHERE workflow LIKE 'lat%%' AND event_time >= toDateTime(%d) AND k >= %d GROUP BY k",
			b.db, start.Add(time.Duration(lowest)*interval).Unix()-1, lowest))
		if err != nil {
			return err
		}
		var seen int64
		var full []int
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 {
				continue
			}
			k, _ := strconv.Atoi(f[0])
			c, _ := strconv.Atoi(f[1])
			seen += int64(c)
			if c == bs && k < nb && visible[k].IsZero() {
				full = append(full, k)
			}
		}
		// Every row that query saw must also be in the rollup: the rollup total
		// for the phase is at least all rows before `lowest` plus what was seen.
		v, err := b.chInts(ctx, fmt.Sprintf("SELECT toInt64(sum(calls)) FROM %s.usage_minute WHERE workflow LIKE 'lat%%'", b.db))
		if err != nil {
			return err
		}
		pe := time.Now()
		polls++
		pollNanos += int64(pe.Sub(ps))
		if len(v) == 1 && v[0] >= int64(lowest*bs)+seen {
			for _, k := range full {
				visible[k] = pe
				done++
			}
			for lowest < nb && !visible[lowest].IsZero() {
				lowest++
			}
		}
	}
	wg.Wait()
	wall := time.Since(start)
	cpu1 := b.cpu()
	lat := make([]time.Duration, nb)
	for k := range lat {
		lat[k] = visible[k].Sub(sched[k])
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("  %d events in %d batches; event -> queryable (raw + rollup): p50 %s  p90 %s  p99 %s  max %s  min %s\n",
		nb*bs, nb, pct(0.5).Round(time.Millisecond), pct(0.9).Round(time.Millisecond), pct(0.99).Round(time.Millisecond),
		lat[len(lat)-1].Round(time.Millisecond), lat[0].Round(time.Millisecond))
	fmt.Printf("  %d polls, mean poll (two queries) %s: resolution ~ poll interval + that\n", polls, time.Duration(pollNanos/max(polls, 1)).Round(time.Millisecond))
	fmt.Printf("  loadavg at end %s\n", loadavg())
	fmt.Print(cpu1.report(cpu0, wall, nb*bs))
	return nil
}

// ---- phase 3: ClickHouse Kafka engine ----

func (b *bench) kafkaEngine() error {
	n := *flagEvents
	ctx, cancel := context.WithTimeout(context.Background(), *flagWait+time.Minute)
	defer cancel()
	fmt.Printf("\n## ClickHouse Kafka engine: the same %d priced events, JSONEachRow, loadavg %s\n", n, loadavg())
	// A copy of the tokenmeter schema in its own database.
	mig := exec.Command(b.bin, "migrate", b.config)
	mig.Env = append(os.Environ(), "CLICKHOUSE_DATABASE="+b.dbKE, "KAFKA_BROKERS="+strings.Join(b.brokers, ","), "CLICKHOUSE_ADDR="+b.chAddr)
	if out, err := mig.CombinedOutput(); err != nil {
		return fmt.Errorf("migrate %s: %w\n%s", b.dbKE, err, out)
	}
	// No offset ledger there: the Kafka engine table below sets no partition/offset columns.
	for _, t := range []string{"priced_usage", "outcomes", "dlq", "alerts"} {
		if _, err := b.ch(ctx, "DROP TABLE IF EXISTS "+b.dbKE+".zz_sink_offsets_"+t); err != nil {
			return err
		}
	}
	// Columns of priced_usage the events fill (not the Kafka provenance).
	out, err := b.ch(ctx, "DESCRIBE TABLE "+b.dbKE+".priced_usage FORMAT TSV")
	if err != nil {
		return err
	}
	var names, defs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		switch f[0] {
		case "kafka_topic", "kafka_partition", "kafka_offset", "inserted_at":
			continue
		}
		typ := strings.ReplaceAll(f[1], `\'`, "'")
		names = append(names, f[0])
		defs = append(defs, f[0]+" "+typ)
	}
	cols := strings.Join(names, ", ")
	// The priced events, flattened to those columns, in tokenmeter's order.
	rows, err := b.ch(ctx, fmt.Sprintf("SELECT %s FROM %s.priced_usage WHERE workflow LIKE 'tput%%' ORDER BY kafka_partition, kafka_offset FORMAT JSONEachRow", cols, b.db))
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(rows), "\n")
	if len(lines) != n {
		return fmt.Errorf("exported %d rows, want %d (run the throughput phase first)", len(lines), n)
	}
	topic := b.prefix + "ke"
	if _, err := b.adm.CreateTopic(ctx, int32(*flagPartitions), 1, nil, topic); err != nil {
		return err
	}
	tp := time.Now()
	for i, l := range lines {
		b.kcl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(i % *flagPartitions), Value: []byte(l)}, nil)
	}
	if err := b.kcl.Flush(ctx); err != nil {
		return err
	}
	fmt.Printf("  produced %d records (%d bytes avg) in %.2f s\n", n, len(rows)/n, time.Since(tp).Seconds())
	group := b.prefix + "ke-group"
	offs := kadm.Offsets{}
	for p := 0; p < *flagPartitions; p++ {
		offs.Add(kadm.Offset{Topic: topic, Partition: int32(p), At: 0, LeaderEpoch: -1})
	}
	if resp, err := b.adm.CommitOffsets(ctx, group, offs); err != nil || resp.Error() != nil {
		return fmt.Errorf("commit start offsets for %s: %v %v", group, err, resp.Error())
	}
	cpu0 := b.cpu()
	if _, err := b.ch(ctx, fmt.Sprintf("CREATE TABLE %s.priced_kafka (%s) ENGINE = Kafka SETTINGS kafka_broker_list = '%s', "+
		"kafka_topic_list = '%s', kafka_group_name = '%s', kafka_format = 'JSONEachRow'",
		b.dbKE, strings.Join(defs, ", "), strings.Join(b.brokers, ","), topic, group)); err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := b.ch(ctx, fmt.Sprintf("CREATE MATERIALIZED VIEW %[1]s.mv_from_kafka TO %[1]s.priced_usage AS SELECT %[2]s, "+
		"toLowCardinality('%[3]s') AS kafka_topic, toInt32(0) AS kafka_partition, toInt64(0) AS kafka_offset, now() AS inserted_at FROM %[1]s.priced_kafka", b.dbKE, cols, topic)); err != nil {
		return err
	}
	// The rollup views are created on the Kafka table itself (same SELECTs,
	// from schemas/clickhouse/003_rollups.sql), as a Kafka-engine user would,
	// and the ones on priced_usage are dropped.
	sqlFile, err := os.ReadFile("schemas/clickhouse/003_rollups.sql")
	if err != nil {
		return err
	}
	for _, st := range strings.Split(string(sqlFile), ";") {
		if !strings.Contains(st, "MATERIALIZED VIEW") || !strings.Contains(st, "FROM {{db}}.priced_usage") {
			continue
		}
		name := strings.Fields(st[strings.Index(st, "{{db}}.")+len("{{db}}."):])[0]
		if _, err := b.ch(ctx, "DROP TABLE "+b.dbKE+"."+name); err != nil {
			return err
		}
		st = strings.Replace(st, "{{db}}."+name, "{{db}}.kafka_"+name, 1)
		st = strings.ReplaceAll(st, "FROM {{db}}.priced_usage", "FROM {{db}}.priced_kafka")
		st = strings.ReplaceAll(st, "{{db}}", b.dbKE)
		if _, err := b.ch(ctx, st); err != nil {
			return err
		}
		fmt.Printf("  rollup view %s.kafka_%s on the Kafka table\n", b.dbKE, name)
	}
	var tRaw time.Duration
	var raw, rollup int64
	var samples []string
	for {
		time.Sleep(250 * time.Millisecond)
		if ctx.Err() != nil {
			return fmt.Errorf("not done in %s: raw %d rollup %d of %d; see the server log", *flagWait, raw, rollup, n)
		}
		raw, rollup, err = b.counts(ctx, b.dbKE, "tput")
		if err != nil {
			return err
		}
		now := time.Since(t0)
		if len(samples) == 0 || !strings.HasSuffix(samples[len(samples)-1], fmt.Sprintf(" %d", raw)) {
			samples = append(samples, fmt.Sprintf("%.1fs %d", now.Seconds(), raw))
		}
		if tRaw == 0 && raw >= int64(n) {
			tRaw = now
		}
		if raw >= int64(n) && rollup >= int64(n) {
			cpu1 := b.cpu()
			fmt.Printf("  priced_usage count = %d after %.2f s; usage_minute sum(calls) = %d after %.2f s\n", raw, tRaw.Seconds(), rollup, now.Seconds())
			fmt.Printf("  KAFKA ENGINE (backlog on the topic -> queryable in raw and rollup): %.0f events/s\n", float64(n)/now.Seconds())
			fmt.Printf("  progress (time since MV created, rows): %s\n", strings.Join(samples, ", "))
			fmt.Printf("  loadavg at end %s\n", loadavg())
			fmt.Print(cpu1.report(cpu0, now, n))
			var diff string
			diff, err = b.ch(ctx, fmt.Sprintf("SELECT toString(sum(billed_effective_cost)) FROM %s.usage_daily WHERE workflow LIKE 'tput%%' "+
				"UNION ALL SELECT toString(sum(billed_effective_cost)) FROM %s.usage_daily WHERE workflow LIKE 'tput%%'", b.db, b.dbKE))
			diff = strings.Join(strings.Fields(diff), " vs ") + "\n"
			fmt.Printf("  usage_daily sum(billed_effective_cost) tokenmeter vs Kafka engine: %s", diff)
			return err
		}
	}
}
