// Package loadgen plays realistic AI traffic against a running tokenmeter
// collector, through every ingest path a real application would use, and
// says what the pipeline should have metered.
//
// Four simulated workflows (a customer-support copilot, legal research,
// marketing copy and a procurement agent whose one user request fans out
// into many model calls under one trace) call several providers and models
// with cache reads and writes, reasoning tokens, the batch tier and the odd
// long-context request, for users in teams, with prompt templates and
// versions, and report business outcomes in HKD or USD, some tied to the
// trace or conversation that produced them.
//
// Calls are sent as canonical JSON to POST /v1/usage (arrays, NDJSON,
// CloudEvents batches, gzip and zstd), as provider-native usage objects
// (OpenAI, Anthropic, Gemini, Bedrock) to the same endpoint, and as GenAI
// spans through the OpenTelemetry Go SDK's OTLP/HTTP and OTLP/gRPC
// exporters; outcomes go to POST /v1/outcomes. Every workflow sends part of
// its traffic as canonical JSON, so each shows spend even when a newer path
// misbehaves.
//
// File map:
//
//	config.go    Config, defaults, Validate
//	scenario.go  Planner: the workflows, models and token shapes (deterministic per seed)
//	loadgen.go   Run: pacing, routing to paths, draining
//	httpsend.go  HTTP client with retries; body encodings; reading per-item verdicts
//	native.go    provider-native usage objects
//	otlp.go      GenAI spans through the OpenTelemetry SDK
//	summary.go   counts per path, rejections, expected totals per workflow
package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// Run plays traffic for cfg.Duration, drains, and returns what was sent and
// how the collector answered. It returns an error only when nothing could be
// sent (invalid config, unreachable target); per-item failures are in the
// Summary. Cancelling ctx stops the traffic early; queued items still drain.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc := newHTTPClient(&cfg)
	if err := hc.probe(ctx); err != nil {
		return nil, err
	}
	sum := newSummary(&cfg)
	start := time.Now()

	// Sends outlive the traffic by at most DrainTimeout, even after ctx is cancelled.
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()

	var wg sync.WaitGroup
	queue := cfg.BatchSize * 4
	jsonIn := make(chan *Call, queue)
	nativeIn := make(chan *Call, queue)
	outcomeIn := make(chan *event.OutcomeEvent, queue)
	kafkaIn := make(chan *Call, queue)
	var gatewayIn chan *Request
	if cfg.Gateway != "" && !cfg.Story {
		gatewayIn = make(chan *Request, queue)
		startGateway(sendCtx, &wg, &cfg, sum, gatewayIn)
	}
	otlpIn := map[Path]chan *Request{}

	startBatcher(sendCtx, &wg, jsonIn, cfg.BatchSize, cfg.FlushInterval, usageFlusher(hc, sum, PathHTTPJSON, true))
	startBatcher(sendCtx, &wg, nativeIn, cfg.BatchSize, cfg.FlushInterval, usageFlusher(hc, sum, PathNative, false))
	startBatcher(sendCtx, &wg, outcomeIn, cfg.BatchSize, cfg.FlushInterval, outcomeFlusher(hc, sum))
	var warnings []string
	// An OTLP receiver that is not listening would stall every export for
	// the exporter's whole retry budget; its traffic goes over http-json.
	for _, o := range []struct {
		p    Path
		addr string
	}{{PathOTLPHTTP, cfg.OTLPHTTP}, {PathOTLPGRPC, cfg.OTLPGRPC}} {
		p, addr := o.p, o.addr
		if !hasPath(cfg.Paths, p) {
			continue
		}
		conn, err := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s receiver %s is unreachable (%v); its traffic goes through http-json", p, addr, err))
			cfg.Paths = withoutPath(cfg.Paths, p)
			delete(sum.Paths, p)
			continue
		}
		conn.Close()
	}
	if hasPath(cfg.Paths, PathKafka) {
		kp, err := newKafkaProducer(ctx, &cfg, sum)
		if err != nil {
			// Kafka is the one path the collector does not front: without it
			// its traffic goes through http-json instead.
			warnings = append(warnings, err.Error()+"; its traffic goes through http-json")
			cfg.Paths = withoutPath(cfg.Paths, PathKafka)
			delete(sum.Paths, PathKafka)
		} else {
			defer kp.close()
			startBatcher(sendCtx, &wg, kafkaIn, cfg.BatchSize, cfg.FlushInterval, kp.flush)
		}
	}
	var otlpApps []*otlpApp
	for _, p := range cfg.Paths {
		if p != PathOTLPHTTP && p != PathOTLPGRPC {
			continue
		}
		app, err := newOTLPApp(sendCtx, &cfg, p, sum)
		if err != nil {
			return nil, err
		}
		otlpApps = append(otlpApps, app)
		in := make(chan *Request, queue)
		otlpIn[p] = in
		startBatcher(sendCtx, &wg, in, max(1, cfg.BatchSize/8), cfg.FlushInterval, app.flush)
	}

	planner := NewPlanner(PlannerConfig{
		Seed: cfg.Seed, RunID: cfg.RunID, Tenant: cfg.Tenant, Environment: cfg.Environment,
		Base: start, Rate: cfg.Rate, Paths: cfg.Paths, BadEvents: !cfg.NoBadEvents,
	})
	total := int64(math.Ceil(cfg.Rate * cfg.Duration.Seconds()))
	if cfg.Progress != nil {
		for _, w := range warnings {
			fmt.Fprintf(cfg.Progress, "loadgen: WARNING: %s\n", w)
		}
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			t := time.NewTicker(cfg.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					sent, acc, rej, failed := sum.totals()
					fmt.Fprintf(cfg.Progress, "loadgen: %s: %d items sent, %d accepted, %d rejected, %d failed\n",
						time.Since(start).Round(time.Second), sent, acc, rej, failed)
				}
			}
		}()
	}
	base := planner.base
	var requests int64
	next, planned := planner.Next, planner.Calls
	if cfg.Story {
		st := NewStory(PlannerConfig{Seed: cfg.Seed, RunID: cfg.RunID, Tenant: cfg.Tenant, Environment: cfg.Environment,
			Base: cfg.StoryFrom, Paths: cfg.Paths}, cfg.StoryTo, cfg.StoryScale)
		next, planned, total = st.Next, st.Calls, math.MaxInt64
	}
traffic:
	for planned() < total {
		r := next()
		if r == nil {
			break
		}
		if d := time.Until(start.Add(r.At.Sub(base))); d > 0 && !cfg.Story {
			select {
			case <-ctx.Done():
				break traffic
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			break
		}
		requests++
		switch {
		case cfg.viaGateway(r):
			for i := range r.Calls {
				r.Calls[i].Path = PathGateway
			}
			gatewayIn <- r
		case r.Path == PathOTLPHTTP || r.Path == PathOTLPGRPC:
			otlpIn[r.Path] <- r
		default:
			for i := range r.Calls {
				c := &r.Calls[i]
				switch c.Path {
				case PathNative:
					nativeIn <- c
				case PathKafka:
					kafkaIn <- c
				default:
					jsonIn <- c
				}
			}
		}
		if r.Outcome != nil {
			outcomeIn <- r.Outcome
		}
	}

	close(jsonIn)
	close(nativeIn)
	close(outcomeIn)
	close(kafkaIn)
	if gatewayIn != nil {
		close(gatewayIn)
	}
	for _, in := range otlpIn {
		close(in)
	}
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(cfg.DrainTimeout):
		cancelSend() // in-flight requests fail; their items count as failed
		<-drained
	}
	for _, app := range otlpApps {
		app.shutdown(sendCtx)
	}
	sum.mu.Lock()
	sum.Requests = requests
	sum.Planned = planned()
	sum.Elapsed = time.Since(start)
	sum.Warnings = warnings
	sum.mu.Unlock()
	return sum, nil
}

// startBatcher collects items from in into batches of up to size, flushed
// when full, after every, and when in closes.
func startBatcher[T any](ctx context.Context, wg *sync.WaitGroup, in <-chan T, size int, every time.Duration, flush func(context.Context, []T)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		batch := make([]T, 0, size)
		for {
			select {
			case it, ok := <-in:
				if !ok {
					if len(batch) > 0 {
						flush(ctx, batch)
					}
					return
				}
				batch = append(batch, it)
				if len(batch) >= size {
					flush(ctx, batch)
					batch = make([]T, 0, size)
				}
			case <-tick.C:
				if len(batch) > 0 {
					flush(ctx, batch)
					batch = make([]T, 0, size)
				}
			}
		}
	}()
}

// usageFlusher posts a batch of calls to /v1/usage, canonical or
// provider-native, rotating body encodings (CloudEvents only when ce).
func usageFlusher(hc *httpClient, sum *Summary, path Path, ce bool) func(context.Context, []*Call) {
	seq := 0
	stats := sum.path(path)
	return func(ctx context.Context, calls []*Call) {
		items := make([][]byte, 0, len(calls))
		ids := make([]string, 0, len(calls))
		for _, c := range calls {
			var b []byte
			var err error
			if path == PathNative {
				b, err = nativeItem(c)
			} else {
				b, err = json.Marshal(&c.Event)
			}
			if err != nil {
				sum.request(stats, 0, "encode: "+err.Error())
				for _, c := range calls {
					sum.usage(c, result{failed: true})
				}
				return
			}
			items = append(items, b)
			ids = append(ids, c.Event.EventID)
		}
		enc := seq
		if !ce {
			enc = []int{encArray, encNDJSON, encArrayGzip, encNDJSONZstd}[seq%4]
		}
		seq++
		b, err := encodeItems(enc, items, ids, "dev.tokenmeter.usage.v1", "/loadgen/"+calls[0].Event.Application)
		if err != nil {
			sum.request(stats, 0, err.Error())
			for _, c := range calls {
				sum.usage(c, result{failed: true})
			}
			return
		}
		a, err := hc.post(ctx, "/v1/usage", b)
		sum.request(stats, a.retries, requestError(a, err))
		if err != nil {
			a = answer{}
		}
		for i, v := range itemVerdicts(a, len(calls)) {
			sum.usage(calls[i], v)
		}
	}
}

// outcomeFlusher posts a batch of outcomes to /v1/outcomes.
func outcomeFlusher(hc *httpClient, sum *Summary) func(context.Context, []*event.OutcomeEvent) {
	seq := 0
	return func(ctx context.Context, outs []*event.OutcomeEvent) {
		items := make([][]byte, 0, len(outs))
		ids := make([]string, 0, len(outs))
		for _, o := range outs {
			b, err := json.Marshal(o)
			if err != nil {
				sum.request(&sum.Outcomes, 0, "encode: "+err.Error())
				for _, o := range outs {
					sum.outcome(o, result{failed: true})
				}
				return
			}
			items = append(items, b)
			ids = append(ids, o.OutcomeID)
		}
		b, err := encodeItems(seq, items, ids, "dev.tokenmeter.outcome.v1", "/loadgen/outcomes")
		seq++
		if err != nil {
			sum.request(&sum.Outcomes, 0, err.Error())
			for _, o := range outs {
				sum.outcome(o, result{failed: true})
			}
			return
		}
		a, err := hc.post(ctx, "/v1/outcomes", b)
		sum.request(&sum.Outcomes, a.retries, requestError(a, err))
		if err != nil {
			a = answer{}
		}
		for i, v := range itemVerdicts(a, len(outs)) {
			sum.outcome(outs[i], v)
		}
	}
}

// requestError describes a request that failed as a whole: no answer, or a
// status other than 2xx and the per-item answers 400 and 422.
func requestError(a answer, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case a.status >= 300 && a.status != 400 && a.status != 422:
		return fmt.Sprintf("HTTP %d: %s", a.status, firstLine(a.body))
	}
	return ""
}

func hasPath(ps []Path, p Path) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

func withoutPath(ps []Path, p Path) []Path {
	out := make([]Path, 0, len(ps))
	for _, x := range ps {
		if x != p {
			out = append(out, x)
		}
	}
	return out
}
