// Command soak runs `tokenmeter run` (collector and processor on the
// embedded broker, fsync on) and sends it a mix of good and hostile traffic
// for a while, sampling the process's RSS. It fails if the process dies, if
// any answer is a 5xx other than a 503 with Retry-After under load, if a
// good request is refused, or if RSS exceeds -max-rss.
//
//	go build -o bin/tokenmeter ./cmd/tokenmeter
//	go run ./bench/soak -bin bin/tokenmeter -duration 60s -http 127.0.0.1:40480 -broker 127.0.0.1:40481
//
// Hostile requests, one of each per round: 8M `[` gzipped (7.8 KB), a deep
// OTLP/protobuf attribute, a 200 KB workflow + 350 KB conversation id,
// 2^63-1 output tokens, cache counts that overflow, invalid UTF-8, repeated
// keys, an unknown model with a 300 KB name, a slow body that never ends.
// Good requests: batches of 100 canonical events with fresh event ids.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
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

	"google.golang.org/protobuf/encoding/protowire"
)

const token = "demo-acme-token"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("bin", "bin/tokenmeter", "tokenmeter binary")
	repo := flag.String("repo", ".", "repository root (for pipelines/prices)")
	dur := flag.Duration("duration", 60*time.Second, "how long to send")
	httpAddr := flag.String("http", "127.0.0.1:40480", "API listen address")
	broker := flag.String("broker", "127.0.0.1:40481", "embedded broker address")
	otlpHTTP := flag.String("otlp", "127.0.0.1:40482", "OTLP/HTTP listen address")
	workers := flag.Int("workers", 4, "good-traffic senders (0: hostile traffic only)")
	hostileOn := flag.Bool("hostile", true, "send the hostile requests")
	only := flag.String("only", "", "send only this hostile kind (e.g. bracket-bomb)")
	memLimit := flag.Int64("memory-limit", 512<<20, "limits.memory_limit for the process")
	maxRSS := flag.Int64("max-rss", 1<<30, "fail above this RSS (bytes)")
	fsync := flag.Bool("fsync", true, "kafka.embedded.fsync")
	flag.Parse()

	dir, err := os.MkdirTemp("", "tokenmeter-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root, _ := filepath.Abs(*repo)
	cfgPath := filepath.Join(dir, "soak.yaml")
	cfg := fmt.Sprintf(`roles: [collector, processor]
http: {listen: %q}
kafka:
  embedded: {listen: %q, data_dir: %q, fsync: %v}
  topics: {partitions: 6}
limits: {memory_limit: %d}
collector:
  otlp: {grpc_listen: "", http_listen: %q}
tenants:
  - id: acme
    reporting_currency: HKD
    time_zone: Asia/Hong_Kong
    token_sha256: ["6972625cf174a9fd5a7c8bd472c0924f8b3287c47736b36af448ceb846ce8548"]
pricing:
  catalogues: [%q]
  fx: %q
processor:
  transactional_id: soak-processor
`, *httpAddr, *broker, filepath.Join(dir, "kafka"), *fsync, *memLimit, *otlpHTTP,
		filepath.Join(root, "pipelines/prices/catalogue.yaml"), filepath.Join(root, "pipelines/prices/fx.csv"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(*bin, "run", cfgPath)
	cmd.Env = append(os.Environ(), "TOKENMETER_LOG_LEVEL=warn")
	logf, _ := os.Create(filepath.Join(dir, "tokenmeter.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	base := "http://" + *httpAddr
	if err := waitReady(base, exited); err != nil {
		return err
	}

	var (
		mu      sync.Mutex
		answers = map[string]int{}
		bad     []string
		good    atomic.Int64
	)
	note := func(kind string, code int, body string) {
		mu.Lock()
		defer mu.Unlock()
		answers[fmt.Sprintf("%s %d", kind, code)]++
		fail := code >= 500 && code != http.StatusServiceUnavailable
		if kind == "good" && code != http.StatusAccepted && code != http.StatusServiceUnavailable {
			fail = true
		}
		if kind != "good" && kind != "slow" && (code < 400 || code >= 500) {
			fail = true
		}
		if fail && len(bad) < 20 {
			bad = append(bad, fmt.Sprintf("%s: %d %.200s", kind, code, body))
		}
	}
	client := &http.Client{Timeout: 60 * time.Second}
	post := func(kind, url, ct string, body []byte, hdr ...string) {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", ct)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			note(kind, 0, err.Error())
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		note(kind, resp.StatusCode, string(b))
	}

	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				post("good", base+"/v1/usage", "application/json", goodBatch(&seq, 100))
				good.Add(100)
			}
		}()
	}
	var hostile []hostileReq
	for _, h := range hostileRequests() {
		if *only == "" || h.kind == *only {
			hostile = append(hostile, h)
		}
	}
	if !*hostileOn {
		hostile = nil
	}
	wg.Add(1)
	go func() {
		if !*hostileOn {
			wg.Done()
			return
		}
		defer wg.Done()
		for ctx.Err() == nil {
			for _, h := range hostile {
				if ctx.Err() != nil {
					return
				}
				url := base + "/v1/usage"
				if h.otlp {
					url = "http://" + *otlpHTTP + "/v1/traces"
				}
				post(h.kind, url, h.ct, h.body, h.hdr...)
			}
			if *only == "" || *only == "slow" {
				slowBody(*httpAddr, note)
			}
		}
	}()

	// RSS every 250 ms until the senders stop, then 10 s more to see it settle.
	var peak, last int64
	var samples []int64
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	stopAt := time.Time{}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
loop:
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("tokenmeter exited during the soak: %v (log %s)", err, logf.Name())
		case <-done:
			if stopAt.IsZero() {
				stopAt = time.Now().Add(10 * time.Second)
			}
			done = nil
		case <-tick.C:
			r, err := rss(cmd.Process.Pid)
			if err != nil {
				return err
			}
			last = r
			samples = append(samples, r)
			if r > peak {
				peak = r
			}
			if !stopAt.IsZero() && time.Now().After(stopAt) {
				break loop
			}
		}
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	keys := make([]string, 0, len(answers))
	for k := range answers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Printf("soak: %s, %d good events sent, memory_limit %d MiB, fsync %v\n", *dur, good.Load(), *memLimit>>20, *fsync)
	for _, k := range keys {
		fmt.Printf("  %-24s %d\n", k, answers[k])
	}
	fmt.Printf("  RSS peak %d MiB, median %d MiB, 10 s after the senders stopped %d MiB\n",
		peak>>20, samples[len(samples)/2]>>20, last>>20)
	if len(bad) > 0 {
		return fmt.Errorf("unexpected answers:\n  %s", strings.Join(bad, "\n  "))
	}
	if peak > *maxRSS {
		return fmt.Errorf("RSS peak %d MiB over -max-rss %d MiB", peak>>20, *maxRSS>>20)
	}
	return nil
}

func waitReady(base string, exited chan error) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("tokenmeter exited at start: %v", err)
		default:
		}
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("not ready after 2 minutes")
}

func goodBatch(seq *atomic.Int64, n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"event_id":"soak-%d","event_time":%q,"provider":"openai","model":"gpt-4o","input_tokens":1200,"cache_read_input_tokens":200,"output_tokens":300,"workflow":"wf-%d","user_id":"u-%d"}`,
			seq.Add(1), now, i%20, i%50)
	}
	b.WriteByte(']')
	return b.Bytes()
}

type hostileReq struct {
	kind, ct string
	body     []byte
	hdr      []string
	otlp     bool
}

func hostileRequests() []hostileReq {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(bytes.Repeat([]byte("["), 8_000_000))
	_ = zw.Close()
	ev := func(extra string) []byte {
		return []byte(`{"event_id":"h-` + strconv.Itoa(len(extra)) + `","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":5,"output_tokens":1` + extra + `}`)
	}
	return []hostileReq{
		{kind: "bracket-bomb", ct: "application/json", body: gz.Bytes(), hdr: []string{"Content-Encoding", "gzip"}},
		{kind: "deep-otlp", ct: "application/x-protobuf", body: nestedOTLP(300_000), otlp: true},
		{kind: "huge-fields", ct: "application/json", body: ev(`,"workflow":"` + strings.Repeat("w", 200<<10) + `","conversation_id":"` + strings.Repeat("c", 350<<10) + `"`)},
		{kind: "max-tokens", ct: "application/json", body: []byte(`{"event_id":"hmax","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":9223372036854775807}`)},
		{kind: "cache-overflow", ct: "application/json", body: ev(`,"cache_read_input_tokens":9223372036854775807,"cache_write_input_tokens":9223372036854775807`)},
		{kind: "invalid-utf8", ct: "application/json", body: ev(",\"user_id\":\"u-\xff\xfe\"")},
		{kind: "repeated-key", ct: "application/json", body: ev(`,"output_tokens":1000000`)},
		{kind: "long-model", ct: "application/json", body: []byte(`{"event_id":"hm","event_time":"2026-11-28T10:00:00Z","provider":"openai","model":"` + strings.Repeat("m", 300<<10) + `","input_tokens":1,"output_tokens":1}`)},
	}
}

// slowBody opens a request whose body never finishes; the server must drop
// it after http.read_timeout (counted as "slow <n>" by what it answered).
func slowBody(addr string, note func(string, int, string)) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		note("slow", 0, err.Error())
		return
	}
	go func() {
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/usage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[", token)
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
		line, err := bufio.NewReader(conn).ReadString('\n')
		code := 0
		if err == nil && len(line) >= 12 {
			code, _ = strconv.Atoi(line[9:12])
		}
		note("slow", code, line)
	}()
}

// nestedOTLP is an OTLP/protobuf export whose one attribute nests levels
// kvlist values deep (as in internal/collector's regression test).
func nestedOTLP(levels int) []byte {
	fields := []protowire.Number{1, 2, 2, 9, 2}
	for i := 0; i < levels; i++ {
		fields = append(fields, 6, 1, 2)
	}
	inner := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("x"))
	sizes := make([]int, len(fields)+1)
	sizes[len(fields)] = len(inner)
	for i := len(fields) - 1; i >= 0; i-- {
		sizes[i] = protowire.SizeTag(fields[i]) + protowire.SizeBytes(sizes[i+1])
	}
	out := make([]byte, 0, sizes[0])
	for i, f := range fields {
		out = protowire.AppendTag(out, f, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(sizes[i+1]))
	}
	return append(out, inner...)
}

// rss reads VmRSS of pid (bytes).
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
