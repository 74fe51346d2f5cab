// Package confload reads YAML config files the same way everywhere:
// strictly (unknown fields are errors) and with ${VAR} / ${VAR:-default}
// expanded from the environment per value, after parsing.
//
// Expanding after parsing is what keeps a value a value: an environment
// variable that holds "#", ": " or a newline becomes part of one scalar and
// cannot change the document's structure, and a ${VAR} inside a comment is
// never looked up (comments are not values). It is the approach of the
// OpenTelemetry collector's confmap. A value that is exactly one plain
// ${VAR} is re-typed from what the variable holds, so `port: ${PORT}` fills
// an int field; anything quoted or interpolated stays a string.
package confload

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// LookupFunc finds an environment variable; os.LookupEnv in production.
type LookupFunc func(string) (string, bool)

// File reads path and decodes it into out (see Decode).
func File(path string, out any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := Decode(raw, out, os.LookupEnv); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Decode parses raw as one YAML document, expands ${VAR} and ${VAR:-default}
// in every scalar value with lookup, and decodes the result into out,
// rejecting fields out does not have. Every unset variable without a default
// is reported in one error. An empty document leaves out as it is.
func Decode(raw []byte, out any, lookup LookupFunc) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return err
	}
	if doc.Kind == 0 {
		return nil
	}
	missing := map[string]bool{}
	expandNode(&doc, lookup, missing)
	if len(missing) > 0 {
		names := make([]string, 0, len(missing))
		for n := range missing {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("env not set: %s", strings.Join(names, ", "))
	}
	// yaml.v3 checks unknown fields only in a Decoder, not in Node.Decode, so
	// the expanded tree is encoded again (quoting whatever needs it) and
	// decoded strictly.
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("re-encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("re-encode: %w", err)
	}
	if err := Strict(buf.Bytes(), out); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Strict decodes one YAML document into out, rejecting fields out does not
// have (so a typo such as `cache_reads:` cannot silently become "not set"),
// without environment expansion: for data files (catalogues, contracts,
// plans, offers). An empty document is io.EOF, as yaml.v3 reports it.
func Strict(raw []byte, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	return dec.Decode(out)
}

func expandNode(n *yaml.Node, lookup LookupFunc, missing map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			expandNode(c, lookup, missing)
		}
	case yaml.MappingNode:
		// Keys stay as written; only values are expanded.
		for i := 1; i < len(n.Content); i += 2 {
			expandNode(n.Content[i], lookup, missing)
		}
	case yaml.ScalarNode:
		expandScalar(n, lookup, missing)
	}
}

func expandScalar(n *yaml.Node, lookup LookupFunc, missing map[string]bool) {
	if !strings.Contains(n.Value, "${") {
		return
	}
	loc := envRef.FindStringIndex(n.Value)
	whole := n.Style == 0 && loc != nil && loc[0] == 0 && loc[1] == len(n.Value)
	n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
		sub := envRef.FindStringSubmatch(m)
		if v, ok := lookup(sub[1]); ok {
			return v
		}
		if sub[2] != "" {
			return sub[3]
		}
		missing[sub[1]] = true
		return ""
	})
	if whole {
		// Re-resolve the type from the variable's value (int, bool, …) as if
		// it had been written there, but never its structure: it stays one
		// scalar, quoted on re-encoding if it needs to be.
		n.Tag = ""
		var probe yaml.Node
		if yaml.Unmarshal([]byte(n.Value), &probe) == nil && len(probe.Content) == 1 &&
			probe.Content[0].Kind == yaml.ScalarNode && probe.Content[0].Value == n.Value &&
			(probe.Content[0].Tag == "!!int" || probe.Content[0].Tag == "!!float" || probe.Content[0].Tag == "!!bool") {
			// Numbers and booleans only: "~" or "null" from a variable is
			// that text, not an absent value.
			n.Tag = probe.Content[0].Tag
		} else {
			setString(n)
		}
	} else {
		setString(n)
	}
}

// setString makes n a string that survives re-encoding byte for byte:
// double-quoted YAML escapes every character that could mean something else.
func setString(n *yaml.Node) {
	n.Tag = "!!str"
	n.Style = yaml.DoubleQuotedStyle
}
