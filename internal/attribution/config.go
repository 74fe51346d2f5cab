package attribution

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the `processor.attribution:` section: ordered rules and a
// user → team directory.
//
// For each attributed field the first source that has a value wins, in this
// order:
//
//  1. the first matching rule with `override: true` that sets the field;
//  2. the value the event carried;
//  3. (team, cost_centre) the directory entry of the event's user_id;
//  4. the first matching rule (without override) that sets the field;
//  5. (cost_centre) the directory's team → cost centre entry for the team resolved above;
//  6. workflow and team fall back to "unattributed"; the other fields stay empty.
type Config struct {
	// Directory is a YAML or CSV file (by extension: .yaml/.yml or .csv)
	// mapping user_id to team and cost centre. Relative paths are resolved
	// against the pipeline config file. Default "" (no directory).
	Directory string `yaml:"directory"`
	// Rules are evaluated in order against the event as received. Default none:
	// only what events carry is used and the rest is "unattributed".
	Rules []Rule `yaml:"rules"`
}

// Rule maps events matching When to the attribution values in Set.
type Rule struct {
	// Name identifies the rule in priced events (attribution_rule) and
	// errors. Required and unique.
	Name string `yaml:"name"`
	// When lists conditions that must all hold (AND). Keys are event field
	// names (application, provider, model, user_id, …) or
	// `attributes.<key>` (e.g. attributes.service.name). Values are a string
	// or a list of strings (any of them, OR); `*` matches any run of
	// characters; "" matches an absent field. An empty When matches every event.
	When map[string]Match `yaml:"when"`
	// Set holds the values this rule assigns. At least one field is required.
	Set Fields `yaml:"set"`
	// Override lets this rule replace values the event carried (and the
	// directory's). Default false: the rule only fills fields that are empty.
	Override bool `yaml:"override"`
}

// Fields are the attribution values a rule can set.
type Fields struct {
	Workflow       string `yaml:"workflow"`
	Team           string `yaml:"team"`
	PromptTemplate string `yaml:"prompt_template"`
	PromptVersion  string `yaml:"prompt_version"`
	Application    string `yaml:"application"`
	CostCentre     string `yaml:"cost_centre"`
}

func (f Fields) isZero() bool { return f == Fields{} }

// Match is one condition's accepted values: a YAML string or list of strings.
type Match []string

// UnmarshalYAML accepts a scalar or a sequence of scalars.
func (m *Match) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*m = Match{n.Value}
		return nil
	case yaml.SequenceNode:
		var vs []string
		if err := n.Decode(&vs); err != nil {
			return err
		}
		*m = vs
		return nil
	default:
		return fmt.Errorf("line %d: a condition is a string or a list of strings", n.Line)
	}
}

// conditionFields are the event fields a condition may test, by JSON name.
var conditionFields = map[string]field{
	"tenant":          fTenant,
	"provider":        fProvider,
	"model":           fModel,
	"operation":       fOperation,
	"service_tier":    fServiceTier,
	"region":          fRegion,
	"workflow":        fWorkflow,
	"prompt_template": fPromptTemplate,
	"prompt_version":  fPromptVersion,
	"user_id":         fUserID,
	"team":            fTeam,
	"application":     fApplication,
	"environment":     fEnvironment,
	"agent_name":      fAgentName,
}

const attrPrefix = "attributes."

// Validate reports every problem at once, each with its field path.
func (c *Config) Validate() error {
	var errs []error
	names := map[string]int{}
	for i, r := range c.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: is required", p))
		} else if j, dup := names[r.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q is also the name of rules[%d]", p, r.Name, j))
		} else {
			names[r.Name] = i
		}
		for k, m := range r.When {
			if _, ok := conditionFields[k]; !ok && !(strings.HasPrefix(k, attrPrefix) && len(k) > len(attrPrefix)) {
				errs = append(errs, fmt.Errorf("%s.when.%s: unknown field; use an event field (application, provider, model, user_id, …) or attributes.<key>", p, k))
			}
			if len(m) == 0 {
				errs = append(errs, fmt.Errorf("%s.when.%s: needs at least one value", p, k))
			}
		}
		if r.Set.isZero() {
			errs = append(errs, fmt.Errorf("%s.set: sets nothing; give at least one of workflow, team, prompt_template, prompt_version, application, cost_centre", p))
		}
	}
	if d := strings.ToLower(c.Directory); d != "" && !strings.HasSuffix(d, ".yaml") && !strings.HasSuffix(d, ".yml") && !strings.HasSuffix(d, ".csv") {
		errs = append(errs, fmt.Errorf("directory: %q must end in .yaml, .yml or .csv", c.Directory))
	}
	return errors.Join(errs...)
}
