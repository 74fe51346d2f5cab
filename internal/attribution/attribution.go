// Package attribution ties every usage event to a workflow, team, prompt
// template and version, application and cost centre, using ordered
// declarative rules and a user → team directory. What nothing explains stays
// explicitly event.Unattributed for workflow and team, so its share of spend
// is visible.
//
// An Attributor is immutable after New and safe for concurrent use; Apply
// does not allocate.
package attribution

import (
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/glob"
	"slices"
	"strings"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

type field uint8

const (
	fAttribute field = iota
	fTenant
	fProvider
	fModel
	fOperation
	fServiceTier
	fRegion
	fWorkflow
	fPromptTemplate
	fPromptVersion
	fUserID
	fTeam
	fApplication
	fEnvironment
	fAgentName
)

func (f field) value(ev *event.UsageEvent, attr string) string {
	switch f {
	case fTenant:
		return ev.Tenant
	case fProvider:
		return ev.Provider
	case fModel:
		return ev.Model
	case fOperation:
		return ev.Operation
	case fServiceTier:
		return ev.ServiceTier
	case fRegion:
		return ev.Region
	case fWorkflow:
		return ev.Workflow
	case fPromptTemplate:
		return ev.PromptTemplate
	case fPromptVersion:
		return ev.PromptVersion
	case fUserID:
		return ev.UserID
	case fTeam:
		return ev.Team
	case fApplication:
		return ev.Application
	case fEnvironment:
		return ev.Environment
	case fAgentName:
		return ev.AgentName
	default:
		return ev.Attributes[attr]
	}
}

type condition struct {
	field field
	attr  string
	any   []glob.Pattern
}

func (c *condition) holds(ev *event.UsageEvent) bool {
	v := c.field.value(ev, c.attr)
	for i := range c.any {
		if c.any[i].Match(v) {
			return true
		}
	}
	return false
}

type rule struct {
	name     string
	when     []condition
	set      Fields
	override bool
}

func (r *rule) matches(ev *event.UsageEvent) bool {
	for i := range r.when {
		if !r.when[i].holds(ev) {
			return false
		}
	}
	return true
}

// Attributor applies a Config.
type Attributor struct {
	rules []rule
	dir   *Directory
}

// New compiles cfg; dir may be nil (no directory). Call cfg.Validate first
// (New calls it too).
func New(cfg Config, dir *Directory) (*Attributor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Attributor{dir: dir}
	for _, r := range cfg.Rules {
		cr := rule{name: r.Name, set: r.Set, override: r.Override}
		// Conditions in a stable order (map iteration is random) so that the
		// cheapest, most selective checks are not reshuffled between runs.
		keys := make([]string, 0, len(r.When))
		for k := range r.When {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			c := condition{}
			if f, ok := conditionFields[k]; ok {
				c.field = f
			} else {
				c.field, c.attr = fAttribute, strings.TrimPrefix(k, attrPrefix)
			}
			for _, v := range r.When[k] {
				c.any = append(c.any, glob.Compile(v))
			}
			cr.when = append(cr.when, c)
		}
		a.rules = append(a.rules, cr)
	}
	return a, nil
}

// Load reads the directory file named by cfg (if any) and compiles cfg.
func Load(cfg Config) (*Attributor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var dir *Directory
	if cfg.Directory != "" {
		d, err := LoadDirectory(cfg.Directory)
		if err != nil {
			return nil, err
		}
		dir = d
	}
	return New(cfg, dir)
}

// Apply copies in into out.UsageEvent with the attribution fields resolved,
// and sets out.CostCentre, out.TaskID and out.AttributionRule. in and
// &out.UsageEvent may be the same event. Conditions are evaluated on in as
// received (before any field is changed).
func (a *Attributor) Apply(in *event.UsageEvent, out *event.PricedUsageEvent) {
	var (
		ovr, rul                 Fields
		ovrWorkflow, rulWorkflow string // rule names that set workflow
	)
	for i := range a.rules {
		r := &a.rules[i]
		if !r.matches(in) {
			continue
		}
		if r.override {
			if ovr.Workflow == "" && r.set.Workflow != "" {
				ovrWorkflow = r.name
			}
			fill(&ovr, &r.set)
		} else {
			if rul.Workflow == "" && r.set.Workflow != "" {
				rulWorkflow = r.name
			}
			fill(&rul, &r.set)
		}
	}
	var entry DirectoryEntry
	if a.dir != nil && in.UserID != "" {
		entry = a.dir.users[in.UserID]
	}

	if &out.UsageEvent != in {
		out.UsageEvent = *in
	}
	ev := &out.UsageEvent
	out.AttributionRule = ""
	switch {
	case ovr.Workflow != "":
		ev.Workflow, out.AttributionRule = ovr.Workflow, ovrWorkflow
	case ev.Workflow != "":
	case rul.Workflow != "":
		ev.Workflow, out.AttributionRule = rul.Workflow, rulWorkflow
	default:
		ev.Workflow = event.Unattributed
	}
	ev.Team = first(ovr.Team, ev.Team, entry.Team, rul.Team, event.Unattributed)
	ev.PromptTemplate = first(ovr.PromptTemplate, ev.PromptTemplate, rul.PromptTemplate)
	ev.PromptVersion = first(ovr.PromptVersion, ev.PromptVersion, rul.PromptVersion)
	ev.Application = first(ovr.Application, ev.Application, rul.Application)
	out.CostCentre = first(ovr.CostCentre, entry.CostCentre, rul.CostCentre)
	if out.CostCentre == "" && a.dir != nil {
		out.CostCentre = a.dir.teams[ev.Team]
	}
	out.TaskID = TaskID(ev)
}

// TaskID groups the calls of one agentic task: trace_id, else
// conversation_id, else the event's own id.
func TaskID(ev *event.UsageEvent) string {
	switch {
	case ev.TraceID != "":
		return ev.TraceID
	case ev.ConversationID != "":
		return ev.ConversationID
	default:
		return ev.EventID
	}
}

// fill sets each empty field of dst that src has (first match wins per field).
func fill(dst, src *Fields) {
	set := func(d *string, s string) {
		if *d == "" {
			*d = s
		}
	}
	set(&dst.Workflow, src.Workflow)
	set(&dst.Team, src.Team)
	set(&dst.PromptTemplate, src.PromptTemplate)
	set(&dst.PromptVersion, src.PromptVersion)
	set(&dst.Application, src.Application)
	set(&dst.CostCentre, src.CostCentre)
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// String describes the compiled rules (for logs).
func (a *Attributor) String() string {
	users := 0
	if a.dir != nil {
		users = len(a.dir.users)
	}
	return fmt.Sprintf("%d rules, %d directory users", len(a.rules), users)
}
