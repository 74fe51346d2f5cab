// Command gateway benchmarks the metering gateway's overhead: the same
// open-loop load (fixed calls/s, Poisson-free constant pacing) against the
// fake provider directly and through `tokenmeter run` with the gateway
// role, client, provider and gateway in separate processes. It prints
// latency p50/p95/p99 per target and, with -pid, the CPU time the gateway
// process used per call (from /proc/PID/stat; the process also runs the
// budget and processor roles and the embedded broker, so this is the whole
// metering cost of a call, not the proxy alone).
//
//	gateway provider -listen 127.0.0.1:40610
//	gateway load -url http://127.0.0.1:40610 -rate 1000 -duration 5s [-key K] [-pid PID]
//
// bench/gateway/run.sh wires both and tokenmeter together.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/gateway/gatewaytest"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gateway provider|load [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "provider":
		err = provider(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway bench:", err)
		os.Exit(1)
	}
}

func provider(args []string) error {
	fs := flag.NewFlagSet("provider", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return http.ListenAndServe(*listen, &gatewaytest.Provider{})
}

// cpuTicks is utime+stime of pid in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st, nil
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	url := fs.String("url", "", "base URL (provider or gateway)")
	rate := fs.Int("rate", 1000, "calls per second")
	dur := fs.Duration("duration", 5*time.Second, "how long")
	key := fs.String("key", "bench-gateway-key-000001", "API key")
	pid := fs.Int("pid", 0, "gateway process to read CPU time of")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Summarise clause 7 of the lease in two lines."}],"max_tokens":24}`)
	tr := &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute}
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	total := int(float64(*rate) * dur.Seconds())
	lat := make([]time.Duration, total)
	status := make([]int, total)
	var wg sync.WaitGroup
	var t0 int64
	if *pid > 0 {
		t0, _ = cpuTicks(*pid)
	}
	start := time.Now()
	interval := time.Second / time.Duration(*rate)
	for i := 0; i < total; i++ {
		// Open loop: call i starts at start + i×interval whatever the
		// earlier calls are doing (no coordinated omission).
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest("POST", *url+"/v1/chat/completions", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+*key)
			req.Header.Set("Content-Type", "application/json")
			s := time.Now()
			resp, err := cl.Do(req)
			if err != nil {
				status[i] = -1
				lat[i] = time.Since(s)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat[i], status[i] = time.Since(s), resp.StatusCode
		}(i)
	}
	wg.Wait()
	wall := time.Since(start)
	var cpu time.Duration
	if *pid > 0 {
		t1, _ := cpuTicks(*pid)
		cpu = time.Duration(t1-t0) * 10 * time.Millisecond // USER_HZ = 100
	}
	ok := 0
	codes := map[int]int{}
	for _, s := range status {
		codes[s]++
		if s == 200 {
			ok++
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("url=%s rate=%d/s calls=%d ok=%d codes=%v achieved=%.0f/s p50=%s p95=%s p99=%s max=%s",
		*url, *rate, total, ok, codes, float64(total)/wall.Seconds(), q(0.50), q(0.95), q(0.99), lat[len(lat)-1])
	if *pid > 0 {
		fmt.Printf(" gateway_cpu=%s cpu_per_call=%s", cpu, cpu/time.Duration(total))
	}
	fmt.Println()
	return nil
}
