package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/role"
	"github.com/tokenmeter/tokenmeter/internal/telemetry"
	"github.com/tokenmeter/tokenmeter/internal/tenant"
	"github.com/tokenmeter/tokenmeter/internal/testenv"
)

// TestEveryRoleMeetsTheLifecycleContract holds every role to role.Role's
// contract, the same way: Start returns once serving, Ready (where the role
// has it) turns ok, Shutdown respects its deadline and is safe to call twice,
// and nothing the role started is left running afterwards. A new role added
// to the start order is covered without touching this test.
func TestEveryRoleMeetsTheLifecycleContract(t *testing.T) {
	// The config names ClickHouse itself; the environment must not override it.
	chEnv := os.Getenv(testenv.EnvClickHouseAddr)
	clearEnv(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range startOrder {
		t.Run(name, func(t *testing.T) {
			chAddr := ""
			if name == RoleSink {
				if chEnv == "" {
					if testenv.RequireServices() {
						t.Fatal("the sink needs ClickHouse: CLICKHOUSE_ADDR is not set")
					}
					t.Skip("the sink needs ClickHouse (CLICKHOUSE_ADDR)")
				}
				t.Setenv(testenv.EnvClickHouseAddr, chEnv)
				_, db := testenv.ClickHouse(t)
				t.Setenv(testenv.EnvClickHouseAddr, "")
				chAddr = fmt.Sprintf("clickhouse: {addr: %q, database: %q}\nsink: {auto_migrate: true}\n", chEnv, db)
			}
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "x"))
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			// Goroutines of the fake broker and of earlier subtests' cleanups
			// are not the role's.
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
				goleak.IgnoreTopFunction("github.com/ClickHouse/clickhouse-go/v2.(*clickhouse).startAutoCloseIdleConnections"))

			roles, extra := name, ""
			if name == RoleGateway {
				// The gateway reserves on the budget role's ledger in the same process.
				roles = RoleBudget + ", " + RoleGateway
				extra = "gateway:\n  listen: 127.0.0.1:0\n  openai: {url: \"http://127.0.0.1:9\"}\n  keys:\n    - {name: app, key: k-lifecycle-test-key-0001, tenant: acme}\n"
			}
			cfg, err := Load(write(t, fmt.Sprintf(`
roles: [%s]
kafka: {brokers: [%q]}
%stenants:
  - {id: acme, reporting_currency: HKD, time_zone: Asia/Hong_Kong, token_sha256: ["%064x"]}
pricing:
  catalogues: [%q]
  fx: %q
collector: {otlp: {grpc_listen: "127.0.0.1:0", http_listen: "127.0.0.1:0"}}
%s`, roles, cluster.ListenAddrs()[0], chAddr, 1,
				filepath.Join(root, "pipelines/prices/catalogue.yaml"), filepath.Join(root, "pipelines/prices/fx.csv"), extra)))
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			admin, err := kgo.NewClient(cfg.Kafka.ClientOpts()...)
			if err != nil {
				t.Fatal(err)
			}
			if err := kafkax.EnsureTopics(ctx, admin, cfg.Kafka.Topics, telemetry.Discard().Logger, cfg.Kafka.Topics.All()...); err != nil {
				t.Fatal(err)
			}
			admin.Close()
			tenants, err := tenant.NewRegistry(cfg.Tenants)
			if err != nil {
				t.Fatal(err)
			}
			prices, err := pricing.Load(cfg.Pricing, cfg.Resolve)
			if err != nil {
				t.Fatal(err)
			}
			tel := telemetry.Discard()
			deps := role.Deps{Logger: tel.Logger, Meter: tel.Meter, MeterProvider: tel.MeterProvider, Tracer: tel.Tracer,
				Kafka: cfg.Kafka, Tenants: tenants, Mux: http.NewServeMux()}
			built, err := buildRoles(cfg, deps, prices)
			if err != nil || len(built) == 0 {
				t.Fatalf("build: %v (%d roles)", err, len(built))
			}
			// Roles the one under test needs start first and stop last.
			fatalDeps := make(chan error, 4)
			for _, dep := range built[:len(built)-1] {
				if err := dep.Start(ctx, fatalDeps); err != nil {
					t.Fatalf("start %s: %v", dep.Name(), err)
				}
				defer func() {
					sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
					defer c()
					_ = dep.Shutdown(sctx)
				}()
			}
			r := built[len(built)-1]
			if !strings.EqualFold(r.Name(), name) {
				t.Errorf("Name() = %q, want %q", r.Name(), name)
			}
			fatal := make(chan error, 4)
			if err := r.Start(ctx, fatal); err != nil {
				t.Fatalf("Start: %v", err)
			}
			if c, ok := r.(role.Checker); ok {
				deadline := time.Now().Add(45 * time.Second)
				for {
					err := c.Ready(ctx)
					if err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("never ready: %v", err)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			select {
			case err := <-fatal:
				t.Fatalf("fatal error while idle: %v", err)
			default:
			}
			const grace = 5 * time.Second
			sctx, scancel := context.WithTimeout(context.Background(), grace)
			start := time.Now()
			if err := r.Shutdown(sctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			scancel()
			// An idle role has nothing to drain: it must be well inside its deadline.
			if took := time.Since(start); took > grace+time.Second {
				t.Errorf("Shutdown took %s with a %s deadline", took, grace)
			}
			sctx, scancel = context.WithTimeout(context.Background(), grace)
			defer scancel()
			if err := r.Shutdown(sctx); err != nil {
				t.Errorf("second Shutdown: %v", err)
			}
		})
	}
}
