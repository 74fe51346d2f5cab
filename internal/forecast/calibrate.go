package forecast

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"
	"gopkg.in/yaml.v3"
)

// Observed is one workflow's drivers measured over a window of real usage.
type Observed struct {
	Workflow string
	Days     int
	Users    int64 // distinct user_id
	Sessions int64 // distinct session_id, else conversation_id, else task_id
	Calls    int64
	Tokens   ClassTokens // totals over the window
	// Derived (rounded: they are estimates, written into a plan as such).
	SessionsPerUserMonth  decimal.Decimal // missing (zero, HasUsers false) without user ids
	CallsPerSession       decimal.Decimal
	PerCall               ClassTokens // input, cache reads, cache writes, output, reasoning per call
	CachedShare           decimal.Decimal
	HasUsers, HasSessions bool
}

// daysPerMonth is the mean Gregorian month (365.25 / 12).
var daysPerMonth = decimal.RequireFromString("30.4375")

// Observe derives each workflow's drivers from tenant's priced calls with
// event_time in [from, to). It reads priced_usage (distinct users and
// sessions cannot be summed from the daily rollup).
func Observe(ctx context.Context, conn driver.Conn, db, tenant string, from, to time.Time) ([]Observed, error) {
	rows, err := conn.Query(ctx, `
SELECT CAST(workflow AS String) AS wf,
       uniqExactIf(user_id, user_id != '') AS users,
       uniqExactIf(sid, sid != '') AS sessions,
       count() AS calls,
       sum(input_tokens), sum(cache_read_input_tokens), sum(cache_write_input_tokens), sum(output_tokens), sum(reasoning_tokens)
FROM (SELECT workflow, user_id, if(session_id != '', session_id, if(conversation_id != '', conversation_id, task_id)) AS sid,
             input_tokens, cache_read_input_tokens, cache_write_input_tokens, output_tokens, reasoning_tokens
      FROM `+db+`.priced_usage WHERE tenant = ? AND event_time >= ? AND event_time < ?)
GROUP BY wf ORDER BY wf`, tenant, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	defer rows.Close()
	days := int(to.Sub(from).Hours() / 24)
	if days < 1 {
		days = 1
	}
	var out []Observed
	for rows.Next() {
		var o Observed
		var users, sessions, calls, in, cr, cw, outT, re uint64
		if err := rows.Scan(&o.Workflow, &users, &sessions, &calls, &in, &cr, &cw, &outT, &re); err != nil {
			return nil, err
		}
		o.Days, o.Users, o.Sessions, o.Calls = days, int64(users), int64(sessions), int64(calls)
		o.Tokens = ClassTokens{decimal.NewFromUint64(in), decimal.NewFromUint64(cr), decimal.NewFromUint64(cw), decimal.NewFromUint64(outT), decimal.NewFromUint64(re)}
		o.derive()
		out = append(out, o)
	}
	return out, rows.Err()
}

func (o *Observed) derive() {
	if o.Calls > 0 {
		n := decimal.NewFromInt(o.Calls)
		q := func(d decimal.Decimal) decimal.Decimal { return d.DivRound(n, 1) }
		o.PerCall = ClassTokens{q(o.Tokens.Input), q(o.Tokens.CacheRead), q(o.Tokens.CacheWrite), q(o.Tokens.Output), q(o.Tokens.Reasoning)}
	}
	if o.Tokens.Input.IsPositive() {
		o.CachedShare = o.Tokens.CacheRead.DivRound(o.Tokens.Input, 4)
	}
	if o.Sessions > 0 {
		o.HasSessions = true
		o.CallsPerSession = decimal.NewFromInt(o.Calls).DivRound(decimal.NewFromInt(o.Sessions), 4)
		if o.Users > 0 {
			o.HasUsers = true
			o.SessionsPerUserMonth = decimal.NewFromInt(o.Sessions).Mul(daysPerMonth).DivRound(decimal.NewFromInt(o.Users).Mul(decimal.NewFromInt(int64(o.Days))), 4)
		}
	}
}

// Comparison is one driver of one workflow, planned beside observed.
type Comparison struct {
	Workflow, Driver  string
	Planned, Observed string // "" when not known
}

// Compare lines up the plan's drivers with the observed ones.
func Compare(p *Plan, obs []Observed) []Comparison {
	byWf := map[string]*Observed{}
	for i := range obs {
		byWf[obs[i].Workflow] = &obs[i]
	}
	var out []Comparison
	for _, w := range p.Workflows {
		o := byWf[w.Name]
		add := func(driver, planned string, observed func(*Observed) string) {
			c := Comparison{Workflow: w.Name, Driver: driver, Planned: planned}
			if o != nil {
				c.Observed = observed(o)
			}
			out = append(out, c)
		}
		add("active users", "", func(o *Observed) string { return fmt.Sprint(o.Users) })
		add("sessions_per_user_month", w.SessionsPerUser.String(), func(o *Observed) string {
			if !o.HasUsers {
				return ""
			}
			return o.SessionsPerUserMonth.String()
		})
		add("calls_per_session", w.CallsPerSession.String(), func(o *Observed) string {
			if !o.HasSessions {
				return ""
			}
			return o.CallsPerSession.String()
		})
		t := w.Tokens
		add("tokens_per_call.input", t.Input.String(), func(o *Observed) string { return o.PerCall.Input.String() })
		add("tokens_per_call.cached_share", t.CachedShare.D.String(), func(o *Observed) string { return o.CachedShare.String() })
		add("tokens_per_call.cache_write", t.CacheWrite.D.String(), func(o *Observed) string { return o.PerCall.CacheWrite.String() })
		add("tokens_per_call.output", t.Output.String(), func(o *Observed) string { return o.PerCall.Output.String() })
		add("tokens_per_call.reasoning", t.Reasoning.D.String(), func(o *Observed) string { return o.PerCall.Reasoning.String() })
	}
	return out
}

// WriteObserved writes the observed drivers into the plan file at path,
// editing only those values (comments and everything else stay as they
// are). Workflows without usage, and drivers that could not be observed
// (no user or session ids), keep their planned values. It returns the
// updated paths.
func WriteObserved(path string, obs []Observed) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty plan", path)
	}
	byWf := map[string]*Observed{}
	for i := range obs {
		byWf[obs[i].Workflow] = &obs[i]
	}
	var changed []string
	wfs := mapValue(doc.Content[0], "workflows")
	if wfs == nil {
		return nil, fmt.Errorf("%s: no workflows", path)
	}
	for i, w := range wfs.Content {
		name := mapValue(w, "name")
		if name == nil || byWf[name.Value] == nil || byWf[name.Value].Calls == 0 {
			continue
		}
		o := byWf[name.Value]
		set := func(m *yaml.Node, key string, d decimal.Decimal) {
			setMapValue(m, key, d.String())
			changed = append(changed, fmt.Sprintf("workflows[%d].%s", i, key))
		}
		if o.HasUsers {
			set(w, "sessions_per_user_month", o.SessionsPerUserMonth)
		}
		if o.HasSessions {
			set(w, "calls_per_session", o.CallsPerSession)
		}
		tok := mapValue(w, "tokens_per_call")
		if tok == nil {
			continue
		}
		tok.Style = 0 // block style, one class per line
		for _, kv := range []struct {
			k string
			v decimal.Decimal
		}{{"input", o.PerCall.Input}, {"cached_share", o.CachedShare}, {"cache_write", o.PerCall.CacheWrite}, {"output", o.PerCall.Output}, {"reasoning", o.PerCall.Reasoning}} {
			setMapValue(tok, kv.k, kv.v.String())
			changed = append(changed, fmt.Sprintf("workflows[%d].tokens_per_call.%s", i, kv.k))
		}
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if _, err := Parse(out.Bytes()); err != nil {
		return nil, fmt.Errorf("the plan with observed values is invalid (not written): %w", err)
	}
	return changed, os.WriteFile(path, out.Bytes(), 0o644)
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setMapValue sets key to a quoted decimal (quoted so no reader takes it for a float).
func setMapValue(m *yaml.Node, key, val string) {
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val, Style: yaml.DoubleQuotedStyle}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
}
