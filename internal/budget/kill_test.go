package budget

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/kafkax"
)

// Environment of the child process that runs the budget role.
const (
	envChild        = "TOKENMETER_BUDGET_KILL_CHILD"
	envChildBrokers = "TOKENMETER_BUDGET_KILL_BROKERS"
)

func killCfg() Config {
	var th []string
	for p := 10; p <= 100; p += 10 {
		th = append(th, fmt.Sprint(p))
	}
	return Config{Budgets: []BudgetConfig{{ID: "k", Tenant: "acme", Amount: "100", Thresholds: th,
		Projection: ProjectionConfig{Disabled: true}}}}
}

// TestKillChildBudgetRole is not a test on its own: it is the process the
// kill -9 test starts (and SIGKILLs). It runs the budget role until killed.
func TestKillChildBudgetRole(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		t.Skip("child process of TestAlertsOnceUnderRepeatedKill9")
	}
	var kc kafkax.Config
	kc.ApplyDefaults()
	kc.Brokers = strings.Split(os.Getenv(envChildBrokers), ",")
	_, f := startRole(t, killCfg(), testDeps(t, kc), nil)
	t.Fatal(<-f) // runs until SIGKILL
}

// The role process is SIGKILLed at random moments while it rebuilds its
// state and raises alerts, ten times, each time after one more event crossed
// one more threshold (10%, 20%, … 100%). A last process is left to finish.
// Every threshold's alert must then be on the alerts topic exactly once.
func TestAlertsOnceUnderRepeatedKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	_, kc := testKafka(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	per := periodOf(PeriodMonth, time.Now(), hkt).ID
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChildBudgetRole$", "-test.count=1")
		cmd.Env = append(os.Environ(), envChild+"=1", envChildBrokers+"="+strings.Join(kc.Brokers, ","))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	for i := 1; i <= 10; i++ {
		// Event i takes spend to 10×i: it crosses threshold 10×i.
		produce(t, kc, priced(fmt.Sprintf("e%d", i), "acme", "w", time.Now(), "10"))
		cmd := start()
		d := time.Duration(rng.IntN(150)) * time.Millisecond
		time.Sleep(d)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		t.Logf("process %d killed after %s: %d alerts on the topic for %d crossed thresholds", i, d, len(committedAlerts(t, kc)), i)
	}
	cmd := start()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(90 * time.Second)
	var got []string
	for {
		got = committedAlerts(t, kc)
		if len(got) >= 10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	got = committedAlerts(t, kc) // after the last process is gone, nothing more can appear
	if len(got) != 10 {
		t.Fatalf("%d alerts on the topic, want 10 (one per threshold): %v", len(got), got)
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("alert %s twice: %v", id, got)
		}
		seen[id] = true
	}
	for p := 10; p <= 100; p += 10 {
		if id := fmt.Sprintf("k/%s/threshold/%d", per, p); !seen[id] {
			t.Fatalf("missing %s: %v", id, got)
		}
	}
}
