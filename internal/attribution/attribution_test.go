package attribution

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

const rulesYAML = `
directory: testdata/teams.yaml
rules:
  - name: support-bot
    when: {application: support-bot}
    set: {workflow: customer-support, team: support-eng, prompt_template: support-answer}
  - name: otel-legal
    when: {attributes.service.name: legal-research}
    set: {workflow: legal-research, application: legal-assistant}
  - name: agents
    when: {agent_name: "planner-*", provider: [openai, anthropic]}
    set: {workflow: agentic-planner}
  - name: batch-jobs
    when: {service_tier: batch}
    set: {workflow: nightly-batch, cost_centre: CC-999}
  - name: force-marketing
    when: {application: copywriter}
    set: {workflow: marketing-copy, team: marketing}
    override: true
  - name: untagged-workflow
    when: {workflow: ""}
    set: {prompt_version: none}
`

func loadTestAttributor(t *testing.T) *Attributor {
	t.Helper()
	var cfg Config
	if err := yaml.Unmarshal([]byte(rulesYAML), &cfg); err != nil {
		t.Fatal(err)
	}
	a, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestApply(t *testing.T) {
	a := loadTestAttributor(t)
	type want struct {
		workflow, team, template, version, app, costCentre, rule, task string
	}
	U := event.Unattributed
	for _, tc := range []struct {
		name string
		in   event.UsageEvent
		want want
	}{
		{
			name: "nothing matches: workflow and team explicitly unattributed, task is the event id",
			in:   event.UsageEvent{EventID: "e1", Workflow: "", Application: "other"},
			// untagged-workflow matches (workflow ""), only sets prompt_version.
			want: want{workflow: U, team: U, version: "none", app: "other", task: "e1"},
		},
		{
			name: "application rule fills workflow, team and template",
			in:   event.UsageEvent{EventID: "e2", Application: "support-bot", TraceID: "tr-1"},
			want: want{workflow: "customer-support", team: "support-eng", template: "support-answer", version: "none", app: "support-bot", rule: "support-bot", task: "tr-1"},
		},
		{
			name: "event's own workflow beats a non-override rule; rule still fills empty team",
			in:   event.UsageEvent{EventID: "e3", Application: "support-bot", Workflow: "escalations", ConversationID: "c-9"},
			// untagged-workflow does not match (workflow set), so no prompt_version.
			want: want{workflow: "escalations", team: "support-eng", template: "support-answer", app: "support-bot", task: "c-9"},
		},
		{
			name: "directory team beats a non-override rule's team; directory cost centre",
			in:   event.UsageEvent{EventID: "e4", Application: "support-bot", UserID: "alice@acme.example", Workflow: "w"},
			want: want{workflow: "w", team: "legal", template: "support-answer", app: "support-bot", costCentre: "CC-410", task: "e4"},
		},
		{
			name: "user without cost centre: team's cost centre from the directory",
			in:   event.UsageEvent{EventID: "e5", UserID: "bob@acme.example", Workflow: "w"},
			want: want{workflow: "w", team: "support", costCentre: "CC-220", task: "e5"},
		},
		{
			name: "attribute rule (OTel service.name)",
			in:   event.UsageEvent{EventID: "e6", Attributes: map[string]string{"service.name": "legal-research"}, Workflow: ""},
			want: want{workflow: "legal-research", team: U, app: "legal-assistant", version: "none", rule: "otel-legal", task: "e6"},
		},
		{
			name: "glob and any-of list both must hold",
			in:   event.UsageEvent{EventID: "e7", AgentName: "planner-v2", Provider: "anthropic", Workflow: ""},
			want: want{workflow: "agentic-planner", team: U, version: "none", rule: "agents", task: "e7"},
		},
		{
			name: "glob matches but provider not in list",
			in:   event.UsageEvent{EventID: "e8", AgentName: "planner-v2", Provider: "google", Workflow: "x"},
			want: want{workflow: "x", team: U, task: "e8"},
		},
		{
			name: "first matching rule wins per field: agents sets workflow, batch-jobs still gives cost centre",
			in:   event.UsageEvent{EventID: "e9", AgentName: "planner-1", Provider: "openai", ServiceTier: "batch"},
			want: want{workflow: "agentic-planner", team: U, version: "none", costCentre: "CC-999", rule: "agents", task: "e9"},
		},
		{
			name: "override rule replaces the event's workflow and the directory's team",
			in:   event.UsageEvent{EventID: "e10", Application: "copywriter", Workflow: "legacy", UserID: "alice@acme.example"},
			// cost centre still from alice's directory entry (the override rule sets none).
			want: want{workflow: "marketing-copy", team: "marketing", app: "copywriter", costCentre: "CC-410", rule: "force-marketing", task: "e10"},
		},
		{
			name: "unknown user: no directory entry",
			in:   event.UsageEvent{EventID: "e11", UserID: "mallory", Workflow: "w"},
			want: want{workflow: "w", team: U, task: "e11"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out event.PricedUsageEvent
			in := tc.in
			a.Apply(&in, &out)
			got := want{out.Workflow, out.Team, out.PromptTemplate, out.PromptVersion, out.Application, out.CostCentre, out.AttributionRule, out.TaskID}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if out.EventID != tc.in.EventID {
				t.Errorf("event id not copied: %q", out.EventID)
			}
			// Conditions see the event as received: the input is untouched.
			if in.Workflow != tc.in.Workflow || in.Team != tc.in.Team {
				t.Errorf("input modified: %+v", in)
			}
		})
	}
}

func TestApplyInPlace(t *testing.T) {
	a := loadTestAttributor(t)
	var out event.PricedUsageEvent
	out.UsageEvent = event.UsageEvent{EventID: "e", Application: "copywriter", Workflow: "legacy"}
	a.Apply(&out.UsageEvent, &out)
	if out.Workflow != "marketing-copy" || out.Team != "marketing" {
		t.Fatalf("in-place apply: %+v", out.UsageEvent)
	}
}

func TestDirectoryCSVMatchesYAML(t *testing.T) {
	y, err := LoadDirectory("testdata/teams.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadDirectory("testdata/teams.csv")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice@acme.example", "bob@acme.example"} {
		ye, _ := y.Lookup(u)
		ce, _ := c.Lookup(u)
		if ye != ce {
			t.Errorf("%s: yaml %+v csv %+v", u, ye, ce)
		}
	}
	if e, _ := c.Lookup("alice@acme.example"); e.Team != "legal" || e.CostCentre != "CC-410" {
		t.Errorf("alice: %+v", e)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := Config{
		Directory: "teams.json",
		Rules: []Rule{
			{Name: "", Set: Fields{Workflow: "w"}},
			{Name: "a", When: map[string]Match{"colour": {"red"}}, Set: Fields{Team: "t"}},
			{Name: "a", When: map[string]Match{"attributes.": {"x"}, "model": {}}},
		},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"rules[0].name: is required",
		"rules[1].when.colour: unknown field",
		"rules[2].name: \"a\" is also the name of rules[1]",
		"rules[2].when.attributes.: unknown field",
		"rules[2].when.model: needs at least one value",
		"rules[2].set: sets nothing",
		"directory: \"teams.json\" must end in",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestDirectoryErrors(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/d.csv"
	writeFile(t, p, "user_id,team\n,legal\nbob,\nann,x\nann,y\n")
	_, err := LoadDirectory(p)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"line 2: user_id is empty", "line 3: user \"bob\" gives neither", "line 5: user \"ann\" appears twice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	writeFile(t, p, "name,group\n")
	if _, err := LoadDirectory(p); err == nil || !strings.Contains(err.Error(), "header must name user_id and team") {
		t.Errorf("header: %v", err)
	}
}

func BenchmarkApply(b *testing.B) {
	var cfg Config
	if err := yaml.Unmarshal([]byte(rulesYAML), &cfg); err != nil {
		b.Fatal(err)
	}
	a, err := Load(cfg)
	if err != nil {
		b.Fatal(err)
	}
	in := event.UsageEvent{EventID: "e", Application: "support-bot", UserID: "bob@acme.example", Attributes: map[string]string{"service.name": "x"}}
	var out event.PricedUsageEvent
	b.ReportAllocs()
	for b.Loop() {
		a.Apply(&in, &out)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
