package chx

import (
	"fmt"
	"regexp"
	"strings"
)

// Column is one column of a table as the schema declares it.
type Column struct {
	Name string
	Type string // as written, e.g. Decimal(38, 12) (the money type rendered)
}

var (
	createTableStmt = regexp.MustCompile(`(?is)^CREATE TABLE (?:IF NOT EXISTS )?(?:[A-Za-z0-9_]+\.)?([A-Za-z0-9_]+)(?: ON CLUSTER \S+)?\s*\(`)
	addColumnClause = regexp.MustCompile(`(?i)ADD COLUMN (?:IF NOT EXISTS )?([A-Za-z0-9_]+)\s+`)
	alterTableStmt  = regexp.MustCompile(`(?is)^ALTER TABLE (?:[A-Za-z0-9_]+\.)?([A-Za-z0-9_]+)\b`)
	columnModifier  = regexp.MustCompile(`(?i)^(DEFAULT|MATERIALIZED|ALIAS|EPHEMERAL|CODEC|COMMENT|TTL)\b`)
)

// TableColumns returns the columns of table in declaration order, as the
// embedded migrations create it (CREATE TABLE) and extend it (ALTER TABLE …
// ADD COLUMN), rendered for a single server. It lets code that builds rows
// for a table (the sink) check itself against the one schema instead of a
// copy; internal/chx's tests check it against the server's system.columns.
func TableColumns(table string) ([]Column, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	var cols []Column
	found := false
	for _, m := range migs {
		sts, err := m.Statements(Target{Database: "db"})
		if err != nil {
			return nil, err
		}
		for _, st := range sts {
			if c := createTableStmt.FindStringSubmatchIndex(st); c != nil && st[c[2]:c[3]] == table {
				body, ok := balanced(st[c[1]-1:])
				if !ok {
					return nil, fmt.Errorf("%s: CREATE TABLE %s: unbalanced parentheses", m.Name, table)
				}
				found = true
				for _, def := range splitTopLevel(body, ',') {
					if col, ok := parseColumn(def); ok {
						cols = append(cols, col)
					}
				}
			}
			if a := alterTableStmt.FindStringSubmatch(st); a != nil && a[1] == table {
				for _, cl := range splitTopLevel(st[len(a[0]):], ',') {
					cl = strings.TrimSpace(cl)
					if m := addColumnClause.FindStringSubmatchIndex(cl); m != nil && m[0] == 0 {
						col, _ := parseColumn(cl[m[2]:])
						cols = append(cols, col)
					}
				}
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("no CREATE TABLE %s in schemas/clickhouse", table)
	}
	return cols, nil
}

// balanced returns what is inside the parenthesis s starts with.
func balanced(s string) (string, bool) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'':
			i = quotedEnd(s, i) - 1
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return s[1:i], true
			}
		}
	}
	return "", false
}

// splitTopLevel splits s at sep outside parentheses and quotes.
func splitTopLevel(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'' || c == '"' || c == '`':
			i = quotedEnd(s, i) - 1
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseColumn reads `name Type [DEFAULT …]`; index and projection
// definitions are not columns.
func parseColumn(def string) (Column, bool) {
	f := strings.Fields(def)
	if len(f) < 2 || strings.EqualFold(f[0], "INDEX") || strings.EqualFold(f[0], "PROJECTION") || strings.EqualFold(f[0], "CONSTRAINT") {
		return Column{}, false
	}
	name := f[0]
	rest := strings.TrimSpace(strings.TrimSpace(def)[len(name):])
	// The type runs to the first modifier keyword outside parentheses.
	depth := 0
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ' ', '\t', '\n':
			if depth == 0 && columnModifier.MatchString(strings.TrimSpace(rest[i:])) {
				return Column{Name: name, Type: strings.TrimSpace(rest[:i])}, true
			}
		}
	}
	return Column{Name: name, Type: strings.TrimSpace(rest)}, true
}
