package report

import (
	"fmt"
	"html/template"
	"io"
)

// WriteHTML writes the pack as one self-contained HTML file: styles inline,
// charts inline as SVG, no scripts, fonts or images fetched when opened.
func WriteHTML(w io.Writer, p *Pack) error {
	type block struct {
		Block
		ChartSVG template.HTML
		Empty    bool
	}
	type page struct {
		Page
		Blocks []block
	}
	var pages []page
	for _, pg := range p.Pages {
		out := page{Page: pg}
		for _, b := range pg.Blocks {
			hb := block{Block: b}
			if b.Chart != nil {
				if b.Chart.Empty() {
					hb.Empty = true
				} else {
					svg, err := b.Chart.SVG()
					if err != nil {
						return fmt.Errorf("page %s, %s: chart: %w", pg.ID, b.Title, err)
					}
					hb.ChartSVG = template.HTML(svg) // gonum/plot escapes every text it draws
				}
			}
			out.Blocks = append(out.Blocks, hb)
		}
		pages = append(pages, out)
	}
	return packTemplate.Execute(w, struct {
		*Pack
		Pages []page
	}{p, pages})
}

var packTemplate = template.Must(template.New("pack").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} - {{.Tenant}} - {{.Period}}</title>
<style>
@page { size: A4 landscape; margin: 12mm; }
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; color: #1b1b1b; margin: 0; background: #f3f4f6; font-size: 12px; }
.page { background: #fff; max-width: 1100px; margin: 16px auto; padding: 24px 32px; box-shadow: 0 1px 3px rgba(0,0,0,.15); page-break-after: always; }
header.cover { border-bottom: 3px solid #1f4e79; margin-bottom: 12px; padding-bottom: 6px; }
header.cover .sub { color: #555; }
h1 { font-size: 22px; margin: 0 0 4px; color: #1f4e79; }
h2 { font-size: 18px; margin: 0 0 6px; color: #1f4e79; }
h3 { font-size: 14px; margin: 16px 0 4px; }
p.lead { font-size: 14px; margin: 4px 0 12px; }
p.reading { margin: 2px 0 6px; color: #333; }
.metrics { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0 12px; }
.metric { flex: 0 0 calc(33% - 10px); box-sizing: border-box; border: 1px solid #d5dae1; border-radius: 4px; padding: 8px 10px; }
.metric .label { color: #555; font-size: 11px; }
.metric .value { font-size: 18px; font-weight: bold; margin: 2px 0; }
.metric .reading { color: #555; font-size: 11px; }
.missing { color: #888; font-style: italic; font-weight: normal; }
.block { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.chart svg { width: 480px; height: auto; }
.nochart { width: 480px; height: 120px; border: 1px dashed #bbb; color: #888; display: flex; align-items: center; justify-content: center; }
table { border-collapse: collapse; margin: 4px 0; font-size: 11px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef2f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
p.note, p.empty { color: #666; font-style: italic; }
footer { color: #777; font-size: 10px; margin-top: 14px; border-top: 1px solid #e3e6ea; padding-top: 4px; }
@media print { body { background: #fff; } .page { box-shadow: none; margin: 0; max-width: none; } }
</style></head>
<body>
{{- range $i, $pg := .Pages}}
<section class="page" id="{{$pg.ID}}">
{{- if eq $i 0}}
<header class="cover"><h1>{{$.Title}}: {{$.Tenant}}, {{$.Period}}</h1>
<div class="sub">Amounts in {{$.Currency}}; months in {{$.TimeZone}}. Generated {{$.Generated.Format "2006-01-02 15:04 MST"}}.</div></header>
{{- end}}
<h2>{{$pg.Title}}</h2>
{{- if $pg.Lead}}<p class="lead">{{$pg.Lead}}</p>{{end}}
{{- if $pg.Metrics}}<div class="metrics">
{{- range $pg.Metrics}}<div class="metric"><div class="label">{{.Label}}</div><div class="value{{if .Missing}} missing{{end}}">{{.Value}}</div>{{if .Reading}}<div class="reading">{{.Reading}}</div>{{end}}</div>{{end}}
</div>{{end}}
{{- range $pg.Blocks}}
<h3>{{.Title}}</h3>
{{- if .Reading}}<p class="reading">{{.Reading}}</p>{{end}}
<div class="block">
{{- if .Chart}}{{if .Empty}}<div class="nochart">No data for this chart in the period</div>{{else}}<div class="chart">{{.ChartSVG}}</div>{{end}}{{end}}
{{- with .Table}}<div>
{{- if .Rows}}<table><thead><tr>{{range .Columns}}<th>{{.}}</th>{{end}}</tr></thead><tbody>
{{- range .Rows}}<tr>{{range .}}<td class="{{if .Num}}num{{end}}{{if .Missing}} missing{{end}}">{{.Text}}</td>{{end}}</tr>{{end}}
</tbody></table>{{else}}<p class="empty">{{if .Empty}}{{.Empty}}{{else}}No rows.{{end}}</p>{{end}}
{{- if .Note}}<p class="note">{{.Note}}</p>{{end}}</div>{{end}}
</div>
{{- end}}
{{- range $pg.Notes}}<p class="note">{{.}}</p>{{end}}
<footer>{{$.Tenant}} · {{$.Period}} · page {{inc $i}} of {{len $.Pages}}{{if $.Sources}} · {{$.Sources}}{{end}}</footer>
</section>
{{- end}}
</body></html>
`))
