package chx

import "strings"

// SplitStatements splits SQL text into statements at every `;` that is not
// inside a string literal ('…', with \ escapes and ” doubling), a quoted
// identifier ("…" or `…`) or a comment. Comments (`-- …`, `# …` to the end
// of the line, `/* … */`) are dropped; what remains of each statement is
// trimmed, and empty statements are left out.
func SplitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if st := strings.TrimSpace(cur.String()); st != "" {
			out = append(out, st)
		}
		cur.Reset()
	}
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := quotedEnd(sql, i)
			cur.WriteString(sql[i:j])
			i = j - 1
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-', c == '#':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			if i < len(sql) {
				cur.WriteByte('\n')
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				i = len(sql)
			} else {
				i += 2 + end + 1
			}
			cur.WriteByte(' ')
		case c == ';':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

// quotedEnd returns the index just after the quoted run that starts at i
// (sql[i] is the quote), or len(sql) when it is not closed.
func quotedEnd(sql string, i int) int {
	q := sql[i]
	for j := i + 1; j < len(sql); j++ {
		switch sql[j] {
		case '\\':
			j++
		case q:
			if j+1 < len(sql) && sql[j+1] == q { // doubled quote
				j++
				continue
			}
			return j + 1
		}
	}
	return len(sql)
}
