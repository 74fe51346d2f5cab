package pricing

import (
	"fmt"

	"github.com/shopspring/decimal"
	"gopkg.in/yaml.v3"
)

// Amount is an exact decimal read from YAML as written ("2.50", 0.075,
// "1.25e-7"): the scalar's text is parsed, never a float64, so the precision
// given is the precision kept. The zero Amount is "not set".
type Amount struct {
	D   decimal.Decimal
	Set bool
	// text is the figure as written ("2.50"), kept for display and re-export.
	text string
}

// String is the figure as written in the file, else the decimal.
func (a Amount) String() string {
	if a.text != "" {
		return a.text
	}
	return a.D.String()
}

// A returns a set Amount parsed from s; it is for tests and importers and
// reports a malformed number as an error.
func A(s string) (Amount, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return Amount{}, fmt.Errorf("%q is not a decimal number: %w", s, err)
	}
	return Amount{D: d, Set: true, text: s}, nil
}

// UnmarshalYAML parses the scalar's text exactly.
func (a *Amount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a price must be a number", n.Line)
	}
	if n.Tag == "!!null" || n.Value == "" {
		*a = Amount{}
		return nil
	}
	d, err := decimal.NewFromString(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a decimal number", n.Line, n.Value)
	}
	*a = Amount{D: d, Set: true, text: n.Value}
	return nil
}

// MarshalYAML writes the decimal as a quoted string so no reader takes it for a float.
func (a Amount) MarshalYAML() (any, error) {
	if !a.Set {
		return nil, nil
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: a.String(), Style: yaml.DoubleQuotedStyle}, nil
}

// IsZero lets `omitempty` drop unset amounts.
func (a Amount) IsZero() bool { return !a.Set }
