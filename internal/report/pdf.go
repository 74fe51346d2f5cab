package report

import (
	"bytes"
	"fmt"
	"io"

	"github.com/go-pdf/fpdf"
)

const (
	pdfMargin = 12.0 // mm
	pdfChartW = 130.0
)

// WritePDF writes the same pages as WriteHTML as a PDF (A4 landscape):
// charts as PNG images drawn by the same chart code, tables as text so the
// figures can be searched and copied.
func WritePDF(w io.Writer, p *Pack) error {
	pdf := fpdf.New("L", "mm", "A4", "")
	pdf.SetMargins(pdfMargin, pdfMargin, pdfMargin)
	pdf.SetAutoPageBreak(true, pdfMargin+4)
	pdf.SetTitle(fmt.Sprintf("%s: %s, %s", p.Title, p.Tenant, p.Period), true)
	pdf.SetCreator("tokenmeter", true)
	tr := pdf.UnicodeTranslatorFromDescriptor("") // core fonts are cp1252
	pageW, pageH := pdf.GetPageSize()
	contentW := pageW - 2*pdfMargin
	pdf.SetFooterFunc(func() {
		pdf.SetY(-pdfMargin)
		pdf.SetFont("Helvetica", "", 7)
		pdf.SetTextColor(120, 120, 120)
		foot := fmt.Sprintf("%s · %s · page %d", p.Tenant, p.Period, pdf.PageNo())
		if p.Sources != "" {
			foot += " · " + p.Sources
		}
		pdf.CellFormat(contentW, 4, fitText(pdf, tr(foot), contentW), "", 0, "L", false, 0, "")
	})
	images := 0
	for i, pg := range p.Pages {
		pdf.AddPage()
		if i == 0 {
			pdf.SetFont("Helvetica", "B", 18)
			pdf.SetTextColor(0x1f, 0x4e, 0x79)
			pdf.CellFormat(contentW, 9, tr(fmt.Sprintf("%s: %s, %s", p.Title, p.Tenant, p.Period)), "", 1, "L", false, 0, "")
			pdf.SetFont("Helvetica", "", 9)
			pdf.SetTextColor(90, 90, 90)
			pdf.CellFormat(contentW, 5, tr(fmt.Sprintf("Amounts in %s; months in %s. Generated %s.", p.Currency, p.TimeZone, p.Generated.Format("2006-01-02 15:04 MST"))), "", 1, "L", false, 0, "")
			pdf.SetDrawColor(0x1f, 0x4e, 0x79)
			pdf.SetLineWidth(0.8)
			pdf.Line(pdfMargin, pdf.GetY()+1, pageW-pdfMargin, pdf.GetY()+1)
			pdf.Ln(4)
		}
		pdf.SetFont("Helvetica", "B", 14)
		pdf.SetTextColor(0x1f, 0x4e, 0x79)
		pdf.CellFormat(contentW, 8, tr(pg.Title), "", 1, "L", false, 0, "")
		pdf.SetTextColor(30, 30, 30)
		if pg.Lead != "" {
			pdf.SetFont("Helvetica", "", 10)
			pdf.MultiCell(contentW, 5, tr(pg.Lead), "", "L", false)
			pdf.Ln(2)
		}
		if len(pg.Metrics) > 0 {
			pdfMetrics(pdf, tr, pg.Metrics, contentW)
		}
		for _, b := range pg.Blocks {
			if pdf.GetY() > pageH-pdfMargin-30 {
				pdf.AddPage()
			}
			pdf.SetFont("Helvetica", "B", 11)
			pdf.SetTextColor(30, 30, 30)
			pdf.CellFormat(contentW, 7, tr(b.Title), "", 1, "L", false, 0, "")
			if b.Reading != "" {
				pdf.SetFont("Helvetica", "", 9)
				pdf.MultiCell(contentW, 4.5, tr(b.Reading), "", "L", false)
			}
			if b.Chart != nil {
				h := pdfChartW * chartH / chartW
				if pdf.GetY()+h > pageH-pdfMargin-6 {
					pdf.AddPage()
				}
				if b.Chart.Empty() {
					pdf.SetFont("Helvetica", "I", 9)
					pdf.SetTextColor(130, 130, 130)
					pdf.CellFormat(pdfChartW, 12, tr("No data for this chart in the period"), "1", 1, "C", false, 0, "")
					pdf.SetTextColor(30, 30, 30)
				} else {
					png, err := b.Chart.PNG()
					if err != nil {
						return fmt.Errorf("page %s, %s: chart: %w", pg.ID, b.Title, err)
					}
					images++
					name := fmt.Sprintf("chart%d", images)
					pdf.RegisterImageOptionsReader(name, fpdf.ImageOptions{ImageType: "PNG"}, bytes.NewReader(png))
					y := pdf.GetY()
					pdf.ImageOptions(name, pdfMargin, y, pdfChartW, h, false, fpdf.ImageOptions{ImageType: "PNG"}, 0, "")
					pdf.SetY(y + h + 2)
				}
			}
			if b.Table != nil {
				pdfTable(pdf, tr, b.Table, contentW)
			}
			pdf.Ln(2)
		}
		for _, n := range pg.Notes {
			pdf.SetFont("Helvetica", "I", 8)
			pdf.MultiCell(contentW, 4, tr(n), "", "L", false)
		}
	}
	if err := pdf.Error(); err != nil {
		return err
	}
	return pdf.Output(w)
}

func pdfMetrics(pdf *fpdf.Fpdf, tr func(string) string, ms []Metric, contentW float64) {
	const perRow, boxH, gap = 3, 20.0, 3.0
	bw := (contentW - gap*(perRow-1)) / perRow
	for i, m := range ms {
		col := i % perRow
		if col == 0 && i > 0 {
			pdf.SetY(pdf.GetY() + boxH + gap)
		}
		x, y := pdfMargin+float64(col)*(bw+gap), pdf.GetY()
		pdf.SetDrawColor(200, 205, 212)
		pdf.SetLineWidth(0.2)
		pdf.Rect(x, y, bw, boxH, "D")
		pdf.SetXY(x+2, y+1.5)
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(90, 90, 90)
		pdf.CellFormat(bw-4, 4, tr(m.Label), "", 2, "L", false, 0, "")
		if m.Missing {
			pdf.SetFont("Helvetica", "I", 12)
			pdf.SetTextColor(130, 130, 130)
		} else {
			pdf.SetFont("Helvetica", "B", 13)
			pdf.SetTextColor(20, 20, 20)
		}
		pdf.CellFormat(bw-4, 7, tr(m.Value), "", 2, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 7)
		pdf.SetTextColor(90, 90, 90)
		pdf.CellFormat(bw-4, 4, fitText(pdf, tr(m.Reading), bw-5), "", 2, "L", false, 0, "")
		pdf.SetXY(pdfMargin, y)
	}
	pdf.SetY(pdf.GetY() + boxH + gap + 1)
	pdf.SetTextColor(30, 30, 30)
}

func pdfTable(pdf *fpdf.Fpdf, tr func(string) string, t *Table, contentW float64) {
	pdf.SetFont("Helvetica", "", 8)
	if len(t.Rows) == 0 {
		pdf.SetFont("Helvetica", "I", 8)
		pdf.SetTextColor(110, 110, 110)
		msg := t.Empty
		if msg == "" {
			msg = "No rows."
		}
		pdf.MultiCell(contentW, 4.5, tr(msg), "", "L", false)
		pdf.SetTextColor(30, 30, 30)
		return
	}
	// Column widths from the longest text in each column, scaled to fit.
	n := len(t.Columns)
	ws := make([]float64, n)
	for i, c := range t.Columns {
		ws[i] = pdf.GetStringWidth(tr(c)) + 4
	}
	for _, r := range t.Rows {
		for i, c := range r {
			if i < n {
				if w := pdf.GetStringWidth(tr(c.Text)) + 4; w > ws[i] {
					ws[i] = w
				}
			}
		}
	}
	total := 0.0
	for _, w := range ws {
		total += w
	}
	if total > contentW {
		for i := range ws {
			ws[i] *= contentW / total
		}
	}
	header := func() {
		pdf.SetFont("Helvetica", "B", 8)
		pdf.SetFillColor(0xee, 0xf2, 0xf7)
		for i, c := range t.Columns {
			pdf.CellFormat(ws[i], 5, tr(c), "B", 0, "L", true, 0, "")
		}
		pdf.Ln(-1)
		pdf.SetFont("Helvetica", "", 8)
	}
	header()
	_, pageH := pdf.GetPageSize()
	for _, r := range t.Rows {
		if pdf.GetY()+5 > pageH-pdfMargin-6 {
			pdf.AddPage()
			header()
		}
		for i := 0; i < n; i++ {
			c := Cell{}
			if i < len(r) {
				c = r[i]
			}
			align := "L"
			if c.Num {
				align = "R"
			}
			if c.Missing {
				pdf.SetTextColor(130, 130, 130)
			}
			pdf.CellFormat(ws[i], 4.5, fitText(pdf, tr(c.Text), ws[i]-1), "B", 0, align, false, 0, "")
			pdf.SetTextColor(30, 30, 30)
		}
		pdf.Ln(-1)
	}
	if t.Note != "" {
		pdf.SetFont("Helvetica", "I", 7)
		pdf.MultiCell(0, 4, tr(t.Note), "", "L", false)
	}
}

// fitText shortens s (already translated) until it fits width w.
func fitText(pdf *fpdf.Fpdf, s string, w float64) string {
	if pdf.GetStringWidth(s) <= w {
		return s
	}
	r := []byte(s)
	for len(r) > 1 && pdf.GetStringWidth(string(r)+"...") > w {
		r = r[:len(r)-1]
	}
	return string(r) + "..."
}
