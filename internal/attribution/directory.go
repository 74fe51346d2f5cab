package attribution

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/confload"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DirectoryEntry is what the directory knows about one user.
type DirectoryEntry struct {
	Team       string `yaml:"team"`
	CostCentre string `yaml:"cost_centre"`
}

// Directory maps user ids to teams and cost centres, and teams to cost centres.
type Directory struct {
	users map[string]DirectoryEntry
	teams map[string]string
}

// directoryFile is the YAML form:
//
//	users:
//	  alice@acme.example: {team: legal, cost_centre: CC-410}
//	teams:
//	  legal: {cost_centre: CC-410}
type directoryFile struct {
	Users map[string]DirectoryEntry `yaml:"users"`
	Teams map[string]struct {
		CostCentre string `yaml:"cost_centre"`
	} `yaml:"teams"`
}

// LoadDirectory reads a directory file: YAML (.yaml, .yml) or CSV (.csv,
// header `user_id,team[,cost_centre]`). Every problem is reported with its
// line or key.
func LoadDirectory(path string) (*Directory, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("attribution directory: %w", err)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return parseDirectoryCSV(path, raw)
	default:
		return parseDirectoryYAML(path, raw)
	}
}

func parseDirectoryYAML(path string, raw []byte) (*Directory, error) {
	var f directoryFile
	if err := confload.Strict(raw, &f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("attribution directory %s: %w", path, err)
	}
	d := &Directory{users: map[string]DirectoryEntry{}, teams: map[string]string{}}
	var errs []error
	for u, e := range f.Users {
		if e.Team == "" && e.CostCentre == "" {
			errs = append(errs, fmt.Errorf("attribution directory %s: users.%s: gives neither team nor cost_centre", path, u))
		}
		d.users[u] = e
	}
	for t, e := range f.Teams {
		d.teams[t] = e.CostCentre
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

func parseDirectoryCSV(path string, raw []byte) (*Directory, error) {
	r := csv.NewReader(bytes.NewReader(raw))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.Comment = '#'
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("attribution directory %s: %w", path, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("attribution directory %s: empty; the first line must be the header user_id,team[,cost_centre]", path)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[strings.TrimSpace(strings.ToLower(h))] = i
	}
	ui, okU := col["user_id"]
	ti, okT := col["team"]
	ci, okC := col["cost_centre"]
	if !okU || !okT {
		return nil, fmt.Errorf("attribution directory %s: line 1: header must name user_id and team (and optionally cost_centre); got %q", path, strings.Join(rows[0], ","))
	}
	d := &Directory{users: map[string]DirectoryEntry{}, teams: map[string]string{}}
	var errs []error
	for n, row := range rows[1:] {
		line := n + 2
		get := func(i int) string {
			if i < len(row) {
				return strings.TrimSpace(row[i])
			}
			return ""
		}
		u, e := get(ui), DirectoryEntry{Team: get(ti)}
		if okC {
			e.CostCentre = get(ci)
		}
		switch {
		case u == "":
			errs = append(errs, fmt.Errorf("attribution directory %s: line %d: user_id is empty", path, line))
		case e.Team == "" && e.CostCentre == "":
			errs = append(errs, fmt.Errorf("attribution directory %s: line %d: user %q gives neither team nor cost_centre", path, line, u))
		default:
			if _, dup := d.users[u]; dup {
				errs = append(errs, fmt.Errorf("attribution directory %s: line %d: user %q appears twice", path, line, u))
			}
			d.users[u] = e
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// Lookup returns a user's entry.
func (d *Directory) Lookup(user string) (DirectoryEntry, bool) {
	e, ok := d.users[user]
	return e, ok
}
