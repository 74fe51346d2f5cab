package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// ChartKind is how a chart draws its series.
type ChartKind int

const (
	ChartBar  ChartKind = iota // grouped bars, one group per label
	ChartLine                  // one line per series; missing points break the line
)

// Series is one named row of values aligned with Chart.Labels.
type Series struct {
	Name   string
	Values []Value
}

// Chart is a small trend chart. Values are exact; only the drawing uses
// floats (a chart is a picture, the tables carry the figures).
type Chart struct {
	Title  string
	Kind   ChartKind
	Labels []string // x axis (months, quarters)
	Series []Series
	YLabel string
}

// Empty is true when no series has a single value.
func (c Chart) Empty() bool {
	for _, s := range c.Series {
		for _, v := range s.Values {
			if v.OK {
				return false
			}
		}
	}
	return true
}

var palette = []color.Color{
	color.RGBA{0x1f, 0x4e, 0x79, 0xff}, // navy
	color.RGBA{0xe0, 0x7b, 0x39, 0xff}, // orange
	color.RGBA{0x6a, 0xa8, 0x4f, 0xff}, // green
	color.RGBA{0x99, 0x99, 0x99, 0xff}, // grey
	color.RGBA{0xa6, 0x3d, 0x40, 0xff}, // red
	color.RGBA{0x7b, 0x5e, 0xa7, 0xff}, // purple
}

func (c Chart) plot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = c.Title
	p.Title.TextStyle.Font.Size = vg.Points(10)
	p.Y.Label.Text = c.YLabel
	p.Y.Tick.Label.Font.Size = vg.Points(7)
	p.X.Tick.Label.Font.Size = vg.Points(7)
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(7)
	p.Y.Tick.Marker = plainTicks{}
	n := len(c.Series)
	switch c.Kind {
	case ChartBar:
		group := (chartW - 70) / float64(max(len(c.Labels), 1)) * 0.8
		w := vg.Points(math.Max(1.5, group/float64(max(n, 1))))
		for i, s := range c.Series {
			vals := make(plotter.Values, len(c.Labels))
			for j := range vals {
				if j < len(s.Values) && s.Values[j].OK {
					vals[j], _ = s.Values[j].D.Float64()
				}
			}
			b, err := plotter.NewBarChart(vals, w)
			if err != nil {
				return nil, err
			}
			b.Color = palette[i%len(palette)]
			b.LineStyle.Width = 0
			b.Offset = vg.Length(float64(i)-float64(n-1)/2) * w
			p.Add(b)
			p.Legend.Add(s.Name, b)
		}
		p.NominalX(shortLabels(c.Labels)...)
	case ChartLine:
		for i, s := range c.Series {
			col := palette[i%len(palette)]
			var run plotter.XYs
			flush := func() error {
				if len(run) == 0 {
					return nil
				}
				l, pts, err := plotterLinePoints(run)
				if err != nil {
					return err
				}
				l.Color, pts.Color = col, col
				p.Add(l, pts)
				run = nil
				return nil
			}
			for j, v := range s.Values {
				if !v.OK {
					if err := flush(); err != nil {
						return nil, err
					}
					continue
				}
				f, _ := v.D.Float64()
				run = append(run, plotter.XY{X: float64(j), Y: f})
			}
			if err := flush(); err != nil {
				return nil, err
			}
			sw, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}})
			if err != nil {
				return nil, err
			}
			sw.Color = col
			p.Legend.Add(s.Name, sw)
		}
		p.NominalX(shortLabels(c.Labels)...)
		p.X.Min, p.X.Max = -0.5, float64(len(c.Labels))-0.5
	}
	// Head room for the legend, so it never hides the latest points.
	if p.Y.Max > 0 {
		p.Y.Max += (p.Y.Max - math.Min(p.Y.Min, 0)) * 0.25
	}
	if p.Y.Min > 0 {
		p.Y.Min = 0
	}
	return p, nil
}

func plotterLinePoints(xy plotter.XYs) (*plotter.Line, *plotter.Scatter, error) {
	l, err := plotter.NewLine(xy)
	if err != nil {
		return nil, nil, err
	}
	l.Width = vg.Points(1.5)
	s, err := plotter.NewScatter(xy)
	if err != nil {
		return nil, nil, err
	}
	s.GlyphStyle.Shape = draw.CircleGlyph{}
	s.GlyphStyle.Radius = vg.Points(2)
	return l, s, nil
}

// plainTicks labels the y axis with grouped thousands, no exponents.
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = groupFloat(ts[i].Value)
		}
	}
	return ts
}

func groupFloat(f float64) string {
	s := fmt.Sprintf("%.6g", f)
	if strings.ContainsAny(s, "e") || math.Abs(f) >= 1000 {
		s = fmt.Sprintf("%.0f", f)
		return groupDigits(s)
	}
	return s
}

const chartW, chartH = 360, 200 // points

// SVG renders the chart as an inline <svg> element (no XML prolog).
func (c Chart) SVG() (string, error) {
	p, err := c.plot()
	if err != nil {
		return "", err
	}
	wt, err := p.WriterTo(vg.Points(chartW), vg.Points(chartH), "svg")
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return "", err
	}
	s := b.String()
	if i := strings.Index(s, "<svg"); i > 0 {
		s = s[i:]
	}
	return s, nil
}

// PNG renders the chart as a PNG (vgimg, 96 dpi).
func (c Chart) PNG() ([]byte, error) {
	p, err := c.plot()
	if err != nil {
		return nil, err
	}
	wt, err := p.WriterTo(vg.Points(chartW), vg.Points(chartH), "png")
	if err != nil {
		return nil, err
	}

	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var monthAbbr = []string{"", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// shortLabels turns "2026-10" into "Oct" so twelve months fit under a chart.
func shortLabels(ls []string) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l
		if len(l) == 7 && l[4] == '-' {
			if m := int(l[5]-'0')*10 + int(l[6]-'0'); m >= 1 && m <= 12 {
				out[i] = monthAbbr[m]
			}
		}
	}
	return out
}
