// Command budget benchmarks the budget decision API on loopback: a real
// budget role (accounting from an in-process kfake broker, the HTTP API on a
// real listener) and a bounded open-loop client load.
//
//	go run ./bench/budget -rate 5000 -duration 10s
//
// The client sends requests at a fixed rate from a pool of keep-alive
// connections and measures each latency from the request's scheduled send
// time (so a stalled server cannot hide queueing: no coordinated omission).
// Half the checks reserve (unique request ids), half only ask; every check
// is against two budgets (tenant-wide and workflow), one of them enforce.
// Then a closed-loop run with -conns workers measures the maximum throughput.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tokenmeter/tokenmeter/internal/budget"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "budget bench:", err)
		os.Exit(1)
	}
}

func run() error {
	rate := flag.Int("rate", 5000, "open-loop requests per second")
	duration := flag.Duration("duration", 10*time.Second, "open-loop run length")
	workers := flag.Int("workers", 64, "open-loop client goroutines (and max connections)")
	conns := flag.Int("conns", 16, "closed-loop concurrent clients")
	closedFor := flag.Duration("closed-duration", 5*time.Second, "closed-loop run length (0 skips)")
	flag.Parse()

	var kc kafkax.Config
	kc.ApplyDefaults()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, kc.Topics.Priced, kc.Topics.Alerts))
	if err != nil {
		return err
	}
	defer cluster.Close()
	kc.Brokers = cluster.ListenAddrs()

	tenants, err := tenant.NewRegistry([]tenant.Config{{ID: "acme", ReportingCurrency: "HKD", TimeZone: "Asia/Hong_Kong",
		TokenSHA256: []string{tenant.HashToken("bench-token")}}})
	if err != nil {
		return err
	}
	cfg := budget.Config{Budgets: []budget.BudgetConfig{
		{ID: "acme-all", Tenant: "acme", Amount: "100000000"},
		{ID: "acme-legal", Tenant: "acme", Amount: "100000000", Mode: budget.ModeEnforce, Scope: budget.Scope{Workflow: "legal-research"}},
	}}
	cfg.ApplyDefaults()
	// Reservations in the bench are never settled by usage; a short TTL keeps
	// their number (and the heap) at a steady state, as settlement would.
	cfg.ReservationTTL = 5 * time.Second
	mux := http.NewServeMux()
	deps := role.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Kafka: kc, Tenants: tenants, Mux: mux}
	r, err := budget.New(cfg, nil, deps)
	if err != nil {
		return err
	}
	fatal := make(chan error, 2)
	if err := r.Start(context.Background(), fatal); err != nil {
		return err
	}
	defer r.Shutdown(context.Background())
	for r.Ready(context.Background()) != nil {
		time.Sleep(10 * time.Millisecond)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// Server-side time per request (handler only), to tell the code's own
	// latency from the loaded machine's scheduling.
	var smu sync.Mutex
	var server []time.Duration
	recording := atomic.Bool{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		t0 := time.Now()
		mux.ServeHTTP(w, req)
		if recording.Load() {
			d := time.Since(t0)
			smu.Lock()
			server = append(server, d)
			smu.Unlock()
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	// A lean HTTP/1.1 keep-alive client (one connection per goroutine, no
	// pooling machinery) so the client's own CPU takes as little as possible
	// from the two shared cores the server runs on.
	addr := ln.Addr().String()
	var seq atomic.Int64
	type conn struct {
		c  net.Conn
		br *bufio.Reader
	}
	pool := make(chan *conn, *workers+*conns)
	get := func() (*conn, error) {
		select {
		case c := <-pool:
			return c, nil
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		return &conn{c: c, br: bufio.NewReader(c)}, nil
	}
	send := func() error {
		n := seq.Add(1)
		var body []byte
		if n%2 == 0 {
			body = fmt.Appendf(nil, `{"workflow":"legal-research","team":"legal","estimated_cost":"0.35","reserve":true,"request_id":"bench-%d"}`, n)
		} else {
			body = []byte(`{"workflow":"legal-research","team":"legal","estimated_cost":"0.35"}`)
		}
		c, err := get()
		if err != nil {
			return err
		}
		req := fmt.Appendf(nil, "POST /v1/budget/check HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer bench-token\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		if _, err := c.c.Write(append(req, body...)); err != nil {
			c.c.Close()
			return err
		}
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			c.c.Close()
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		pool <- c
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	// Warm up connections and code paths.
	for i := 0; i < 2000; i++ {
		if err := send(); err != nil {
			return err
		}
	}

	fmt.Printf("budget decision API, loopback, GOMAXPROCS=%d, NumCPU=%d, %s\n", runtime.GOMAXPROCS(0), runtime.NumCPU(), loadavg())

	// Open loop.
	total := int(float64(*rate) * duration.Seconds())
	interval := time.Second / time.Duration(*rate)
	jobs := make(chan time.Time, total)
	lat := make([]time.Duration, 0, total)
	rt := make([]time.Duration, 0, total) // from the actual send
	var mu sync.Mutex
	var errs atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, total / *workers + 1)
			localRT := make([]time.Duration, 0, total / *workers + 1)
			for due := range jobs {
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				t0 := time.Now()
				if err := send(); err != nil {
					errs.Add(1)
				}
				local = append(local, time.Since(due))
				localRT = append(localRT, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			rt = append(rt, localRT...)
			mu.Unlock()
		}()
	}
	recording.Store(true)
	start := time.Now().Add(10 * time.Millisecond)
	for i := 0; i < total; i++ {
		jobs <- start.Add(time.Duration(i) * interval)
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("open loop: target %d req/s for %s: %d requests in %s = %.0f req/s, errors %d\n",
		*rate, *duration, len(lat), elapsed.Round(time.Millisecond), float64(len(lat))/elapsed.Seconds(), errs.Load())
	fmt.Printf("  latency from scheduled send: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		pct(0.50), pct(0.90), pct(0.99), pct(0.999), lat[len(lat)-1])
	sort.Slice(rt, func(i, j int) bool { return rt[i] < rt[j] })
	rpct := func(p float64) time.Duration { return rt[int(p*float64(len(rt)-1))] }
	fmt.Printf("  round trip from actual send:  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		rpct(0.50), rpct(0.90), rpct(0.99), rpct(0.999), rt[len(rt)-1])
	recording.Store(false)
	smu.Lock()
	sort.Slice(server, func(i, j int) bool { return server[i] < server[j] })
	spct := func(p float64) time.Duration { return server[int(p*float64(len(server)-1))] }
	fmt.Printf("  server handler time:          p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		spct(0.50), spct(0.90), spct(0.99), spct(0.999), server[len(server)-1])
	smu.Unlock()

	if *closedFor > 0 {
		var done atomic.Int64
		stop := time.Now().Add(*closedFor)
		var cw sync.WaitGroup
		for c := 0; c < *conns; c++ {
			cw.Add(1)
			go func() {
				defer cw.Done()
				for time.Now().Before(stop) {
					if err := send(); err != nil {
						errs.Add(1)
						continue
					}
					done.Add(1)
				}
			}()
		}
		cw.Wait()
		fmt.Printf("closed loop: %d clients for %s: %.0f req/s\n", *conns, *closedFor, float64(done.Load())/closedFor.Seconds())
	}
	select {
	case err := <-fatal:
		return errors.Join(errors.New("role failed"), err)
	default:
	}
	return nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return "loadavg " + string(bytes.TrimSpace(b))
}
