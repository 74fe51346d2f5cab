package budget

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/tokenmeter/tokenmeter/internal/contract"
	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

func testKafka(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, kafkax.Config) {
	t.Helper()
	var kc kafkax.Config
	kc.ApplyDefaults()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, kc.Topics.Priced, kc.Topics.Alerts)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	kc.Brokers = c.ListenAddrs()
	return c, kc
}

func testDeps(t *testing.T, kc kafkax.Config) role.Deps {
	return role.Deps{
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Kafka:   kc,
		Tenants: testTenants(t),
		Mux:     http.NewServeMux(),
	}
}

func produce(t *testing.T, kc kafkax.Config, evs ...*event.PricedUsageEvent) {
	t.Helper()
	cl, err := kgo.NewClient(kc.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var enc contract.Encoder
	for _, ev := range evs {
		v, err := enc.AppendPriced(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		rec := &kgo.Record{Topic: kc.Topics.Priced, Key: event.RecordKey(ev.Tenant, ev.Workflow), Value: v}
		if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// committedAlerts reads every committed alert id on the alerts topic, in order.
func committedAlerts(t *testing.T, kc kafkax.Config) []string {
	t.Helper()
	var ids []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := readToEnd(ctx, kc.ClientOpts(), kc.Topics.Alerts, func(r *kgo.Record) {
		var a event.Alert
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Errorf("alert record: %v", err)
		}
		ids = append(ids, a.AlertID)
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	return ids
}

func startRole(t *testing.T, cfg Config, deps role.Deps, hook func(event.Alert) error) (*Budget, chan error) {
	t.Helper()
	cfg.ApplyDefaults()
	r, err := newBudget(cfg, nil, deps, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	r.probeEvery = 100 * time.Millisecond
	r.beforeCommit = hook
	fatal := make(chan error, 4)
	if err := r.Start(context.Background(), fatal); err != nil {
		t.Fatal(err)
	}
	return r, fatal
}

// waitFor polls cond; the deadline only stops a hung test, it asserts nothing about speed.
func waitFor(t *testing.T, what string, fatal chan error, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		select {
		case err := <-fatal:
			t.Fatalf("waiting for %s: role failed: %v", what, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// crash stops a role the way kill -9 would look to Kafka: nothing is
// flushed, no transaction is ended, no group is left.
func (r *Budget) crash() {
	r.cancel()
	r.hooks.cancel() // deliveries die with the process, unrecorded
	r.producer.Close()
	r.marks.Close()
	r.wg.Wait()
	r.hooks.wg.Wait()
}

func TestAlertExistsOnceAfterAbruptStops(t *testing.T) {
	_, kc := testKafka(t)
	alertOnceAfterAbruptStops(t, kc, "")
}

// The same on a real Apache Kafka broker (KAFKA_BROKERS), whose transaction
// coordinator is the one production relies on to fence and abort.
func TestAlertExistsOnceAfterAbruptStopsRealKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	var kc kafkax.Config
	kc.Brokers = brokers
	kc.Topics.Priced, kc.Topics.Alerts = prefix+"priced", prefix+"alerts"
	kc.Topics.Partitions = 3
	kc.ApplyDefaults()
	admin, err := kgo.NewClient(kc.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, admin, kc.Topics, nil, kc.Topics.Priced, kc.Topics.Alerts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(admin).DeleteTopics(ctx, kc.Topics.Priced, kc.Topics.Alerts)
	})
	alertOnceAfterAbruptStops(t, kc, strings.TrimSuffix(prefix, ".")+"-alerts")
}

func alertOnceAfterAbruptStops(t *testing.T, kc kafkax.Config, txnID string) {
	deps := testDeps(t, kc)
	cfg := Config{AlertTransactionalID: txnID, Budgets: []BudgetConfig{{ID: "b", Tenant: "acme", Amount: "100", Mode: ModeEnforce,
		Projection: ProjectionConfig{Disabled: true}}}}
	now := time.Now()
	per := periodOf(PeriodMonth, now, hkt).ID

	// 1. 60 of 100 HKD: the first process raises 50% and is then killed.
	produce(t, kc, priced("e1", "acme", "support", now, "60"))
	r1, f1 := startRole(t, cfg, deps, nil)
	waitFor(t, "first alert", f1, func() bool { return r1.settled() && r1.alerter.isSent("b/"+per+"/threshold/50") })
	r1.crash()

	// 2. +25 = 85 crosses 80%. The second process produces the alert but is
	// killed before its transaction commits. A redelivered e2 must not count.
	e2 := priced("e2", "acme", "support", now, "25")
	produce(t, kc, e2, e2)
	var once sync.Once
	crashed := make(chan struct{})
	r2, f2 := startRole(t, cfg, testDeps(t, kc), func(a event.Alert) error {
		once.Do(func() { close(crashed) })
		return errors.New("killed")
	})
	waitFor(t, "second process to reach the 80% commit", f2, func() bool {
		select {
		case <-crashed:
			return true
		default:
			return false
		}
	})
	r2.crash()

	// 3. A third process fences the second's open transaction, sees 50% on
	// the topic, and raises 80% exactly once. 85 < 100: no 100% alert.
	r3, f3 := startRole(t, cfg, testDeps(t, kc), nil)
	waitFor(t, "third process to settle", f3, func() bool { return r3.settled() && r3.alerter.isSent("b/"+per+"/threshold/80") })
	// EndTransaction returns once the coordinator has the commit; the marker
	// reaches the partition (and the last stable offset moves) a moment
	// later on a real broker, so read until both are visible (or time out).
	var got []string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if got = committedAlerts(t, kc); len(got) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	want := []string{"b/" + per + "/threshold/50", "b/" + per + "/threshold/80"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("alerts on topic %v, want %v", got, want)
	}
	if s := r3.ledger.status(r3.ledger.byID["b"]); s.Spent.String() != "85" {
		t.Fatalf("rebuilt spend %s, want 85 (60 + 25, duplicate e2 not counted)", s.Spent)
	}
	if err := r3.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	// 4. A clean restart raises nothing new.
	r4, f4 := startRole(t, cfg, testDeps(t, kc), nil)
	waitFor(t, "fourth process to settle", f4, r4.settled)
	if got := committedAlerts(t, kc); len(got) != 2 {
		t.Fatalf("after clean restart: %v", got)
	}
	if r4.alerter.fired.Load() != 0 {
		t.Fatalf("fourth process fired %d alerts", r4.alerter.fired.Load())
	}
	_ = r4.Shutdown(context.Background())
}

func TestStateSurvivesBrokerRestartWithDataDir(t *testing.T) {
	dir := t.TempDir()
	var kc kafkax.Config
	kc.ApplyDefaults()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir), kfake.SeedTopics(3, kc.Topics.Priced, kc.Topics.Alerts))
	if err != nil {
		t.Fatal(err)
	}
	kc.Brokers = c.ListenAddrs()
	cfg := Config{Budgets: []BudgetConfig{{ID: "b", Tenant: "acme", Amount: "100", Projection: ProjectionConfig{Disabled: true}}}}
	now := time.Now()
	per := periodOf(PeriodMonth, now, hkt).ID
	produce(t, kc, priced("e1", "acme", "w", now, "50"))
	r1, f1 := startRole(t, cfg, testDeps(t, kc), nil)
	waitFor(t, "alert", f1, func() bool { return r1.settled() && r1.alerter.isSent("b/"+per+"/threshold/50") })
	r1.crash()
	c.Close()

	// Same data directory, new broker process (same port is not needed: clients reconnect by config).
	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	kc.Brokers = c2.ListenAddrs()
	r2, f2 := startRole(t, cfg, testDeps(t, kc), nil)
	waitFor(t, "settle after broker restart", f2, r2.settled)
	if got := committedAlerts(t, kc); len(got) != 1 || got[0] != "b/"+per+"/threshold/50" {
		t.Fatalf("alerts %v", got)
	}
	if s := r2.ledger.status(r2.ledger.byID["b"]); s.Spent.String() != "50" {
		t.Fatalf("spent %s", s.Spent)
	}
	_ = r2.Shutdown(context.Background())
}

// When the broker goes away the state can no longer be trusted: readiness
// says so and decisions follow the configured policy, saying which.
func TestLostBrokerMakesDecisionsFollowPolicy(t *testing.T) {
	c, kc := testKafka(t)
	cfg := Config{NotReadyPolicy: PolicyFailClosed, Budgets: []BudgetConfig{{ID: "b", Tenant: "acme", Amount: "100", Mode: ModeEnforce}}}
	deps := testDeps(t, kc)
	r, f := startRole(t, cfg, deps, nil)
	defer r.Shutdown(context.Background())
	waitFor(t, "ready", f, r.settled)
	acme, _ := deps.Tenants.Lookup("acme")
	resp, _, _ := r.Check(acme, &CheckRequest{EstimatedCost: ptr(decimal.NewFromInt(1))})
	if resp.Decision != DecisionAllow || resp.State != "ready" {
		t.Fatalf("before: %+v", resp)
	}
	c.Close()
	waitFor(t, "not ready", f, func() bool { return r.Ready(context.Background()) != nil })
	resp, _, _ = r.Check(acme, &CheckRequest{EstimatedCost: ptr(decimal.NewFromInt(1))})
	if resp.Decision != DecisionDeny || resp.State != "not_ready" || resp.Policy != PolicyFailClosed ||
		!strings.Contains(resp.Reason, "priced topic unreadable") {
		t.Fatalf("after broker loss: %+v", resp)
	}
}

func ptr[T any](v T) *T { return &v }

// Shutdown leaves no goroutine of the role behind (the broker's own
// connection handlers are not the role's).
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	_, kc := testKafka(t)
	before := goleak.IgnoreCurrent()
	cfg := Config{Budgets: []BudgetConfig{{ID: "b", Tenant: "acme", Amount: "100",
		Webhooks: []WebhookConfig{{URL: "http://127.0.0.1:1/unreachable"}}}}}
	produce(t, kc, priced("e1", "acme", "w", time.Now(), "60"))
	r, f := startRole(t, cfg, testDeps(t, kc), nil)
	waitFor(t, "alert", f, func() bool { return r.settled() && r.alerter.fired.Load() == 1 })
	// The webhook is unreachable, so its delivery is retrying right now.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).read"),
		goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).write"))
}

// A process that dies while a webhook delivery is still being retried
// leaves no delivery record; the next start delivers that alert again (same
// Idempotency-Key), and a start after a finished delivery does not.
func TestWebhookRedeliveredAfterCrashUntilFinished(t *testing.T) {
	_, kc := testKafka(t)
	var up atomic.Bool
	var mu sync.Mutex
	attempts, ok := 0, map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if !up.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		ok[r.Header.Get(HeaderIdempotencyKey)]++
	}))
	defer srv.Close()
	seen := func() (int, map[string]int) {
		mu.Lock()
		defer mu.Unlock()
		c := map[string]int{}
		for k, v := range ok {
			c[k] = v
		}
		return attempts, c
	}
	cfg := Config{WebhookInitialInterval: 5 * time.Millisecond, Budgets: []BudgetConfig{{ID: "b", Tenant: "acme", Amount: "100",
		Projection: ProjectionConfig{Disabled: true}, Webhooks: []WebhookConfig{{URL: srv.URL + "/hook", Secret: "k"}}}}}
	per := periodOf(PeriodMonth, time.Now(), hkt).ID
	produce(t, kc, priced("e1", "acme", "w", time.Now(), "50"))

	// 1. The receiver is down; the process dies while retrying.
	r1, f1 := startRole(t, cfg, testDeps(t, kc), nil)
	waitFor(t, "failing attempts", f1, func() bool { n, _ := seen(); return n >= 2 })
	r1.crash()

	// 2. The receiver is back; a new process redelivers the alert once.
	up.Store(true)
	r2, f2 := startRole(t, cfg, testDeps(t, kc), nil)
	waitFor(t, "redelivery", f2, func() bool { _, c := seen(); return c["b/"+per+"/threshold/50"] == 1 })
	// The receiver has answered; the delivery is recorded on the deliveries
	// topic just after. Stopping before that would (correctly) leave it to be
	// redelivered, which is not what this step is about.
	waitFor(t, "delivery recorded", f2, func() bool {
		found := false
		_ = readToEnd(context.Background(), kc.ClientOpts(), r2.alerter.deliveriesTopic, func(r *kgo.Record) {
			found = found || strings.Contains(string(r.Value), `"delivered"`)
		})
		return found
	})
	if err := r2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r2.alerter.fired.Load() != 0 || r2.hooks.started.Load() != 1 {
		t.Fatalf("second process fired %d alerts, started %d deliveries; want 0 and 1", r2.alerter.fired.Load(), r2.hooks.started.Load())
	}

	// 3. Delivery finished and recorded: a third process delivers nothing.
	r3, f3 := startRole(t, cfg, testDeps(t, kc), nil)
	waitFor(t, "third process", f3, r3.settled)
	if n := r3.hooks.started.Load(); n != 0 {
		t.Fatalf("third process started %d deliveries", n)
	}
	_ = r3.Shutdown(context.Background())
	if _, c := seen(); len(c) != 1 || c["b/"+per+"/threshold/50"] != 1 {
		t.Fatalf("successful deliveries %v", c)
	}
}
