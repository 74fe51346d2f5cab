package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// clearEnv removes the env overrides `make test` sets, so a test sees only its file.
func clearEnv(t *testing.T) {
	for _, k := range []string{"KAFKA_BROKERS", "CLICKHOUSE_ADDR", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD",
		"CLICKHOUSE_DATABASE", "TOKENMETER_HTTP_LISTEN", "TOKENMETER_ROLES", "TOKENMETER_LOG_LEVEL"} {
		t.Setenv(k, "")
	}
}

func TestValidateReportsEveryProblemWithItsPath(t *testing.T) {
	clearEnv(t)
	cfg, err := Load("testdata/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	if err == nil {
		t.Fatal("broken config validated")
	}
	msg := err.Error()
	for _, want := range []string{
		`roles[1]: "mixer"`,
		`kafka.brokers[0]`,
		`kafka.topics.partitions`,
		`tenants[0].id`,
		`tenants[0].reporting_currency`,
		`tenants[0].time_zone`,
		`telemetry.log_level`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestLoadRejectsUnknownFields(t *testing.T) {
	_, err := Load(write(t, "kafka:\n  brokerz: [a:1]\n"))
	if err == nil || !strings.Contains(err.Error(), "brokerz") {
		t.Fatalf("unknown field accepted: %v", err)
	}
}

func TestEnvExpansionAndOverrides(t *testing.T) {
	t.Setenv("TM_TEST_DB", "analytics")
	t.Setenv("CLICKHOUSE_ADDR", "ch.internal:9440")
	t.Setenv("KAFKA_BROKERS", "k1:9092, k2:9092")
	cfg, err := Load(write(t, "clickhouse:\n  database: ${TM_TEST_DB}\n  password: ${TM_UNSET_PW:-fallback}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClickHouse.Database != "analytics" || cfg.ClickHouse.Password != "fallback" {
		t.Fatalf("expansion: %+v", cfg.ClickHouse)
	}
	if cfg.ClickHouse.Addr != "ch.internal:9440" {
		t.Fatalf("env override lost: %s", cfg.ClickHouse.Addr)
	}
	if len(cfg.Kafka.Brokers) != 2 || cfg.Kafka.Brokers[1] != "k2:9092" {
		t.Fatalf("brokers: %v", cfg.Kafka.Brokers)
	}
	if _, err := Load(write(t, "clickhouse:\n  password: ${TM_SURELY_UNSET}\n")); err == nil ||
		!strings.Contains(err.Error(), "TM_SURELY_UNSET") {
		t.Fatalf("unset env not reported: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(write(t, "{}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Roles) != 4 || cfg.Kafka.Topics.Usage != "tokenmeter.usage.v1" || cfg.HTTP.Listen != ":8080" {
		t.Fatalf("defaults: %+v", cfg)
	}
	// All four roles need prices; nothing else is required.
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "pricing.catalogues: required") {
		t.Fatalf("all roles without a catalogue: %v", err)
	}
	cfg.Pricing.Catalogues = []string{"c.yaml"}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults plus a catalogue must be valid: %v", err)
	}
}

func TestShippedPipelinesValidate(t *testing.T) {
	t.Setenv("TOKENMETER_ACME_TOKEN", "test-token")
	for _, f := range []string{"../../pipelines/demo.yaml", "../../pipelines/production.yaml"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		cfg, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestValidateCatchesBudgetForUnknownTenant(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(write(t, `
tenants: [{id: acme}]
budget:
  budgets:
    - {id: b1, tenant: globex, amount: "100", mode: alert}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "globex") {
		t.Fatalf("budget for an undeclared tenant validated: %v", err)
	}
}

func TestCrossChecks(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(write(t, `
tenants: [{id: acme, reporting_currency: HKD}]
pricing: {catalogues: [c.yaml]}
kafka: {topics: {retention: 168h}}
budget:
  budgets:
    - {id: q, tenant: acme, period: quarter, amount: "100", mode: alert}
`))
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprint(cfg.Validate())
	for _, want := range []string{
		"pricing.fx: required: tenants[0] (acme) reports in HKD",
		"kafka.topics.retention: 168h0m0s is shorter than a quarterly budget (2208h0m0s)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	// Collector and sink alone need neither prices nor FX.
	cfg.Roles = []string{RoleCollector, RoleSink}
	cfg.Pricing.Catalogues = nil
	if err := cfg.Validate(); err != nil {
		t.Fatalf("collector+sink: %v", err)
	}
}

// A secret that looks like YAML stays one value, and a ${VAR} in a comment
// is not required: expansion happens per value after parsing.
func TestEnvValueCannotChangeTheDocument(t *testing.T) {
	t.Setenv("TM_TEST_PW", "p#ss: word\nroles: [sink]")
	cfg, err := Load(write(t, "# override with ${TM_TEST_NOT_SET_ANYWHERE}\nclickhouse:\n  password: ${TM_TEST_PW}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClickHouse.Password != "p#ss: word\nroles: [sink]" {
		t.Fatalf("password %q", cfg.ClickHouse.Password)
	}
	if len(cfg.Roles) != len(AllRoles) {
		t.Fatalf("the variable's text became config: roles %v", cfg.Roles)
	}
}
