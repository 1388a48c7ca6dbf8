package bizmap

import (
	"io"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/portrait-cdp/portrait"
)

// text makes a customer- or user-supplied string safe for a spreadsheet: a
// leading =, +, - or @ would make it a formula.
func text(s string) string {
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}

func num(p *float64) any {
	if p == nil {
		return ""
	}
	return *p
}

func joinCounts(cs []Count) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Label + " " + strconv.FormatFloat(round(100*c.Share, 1), 'f', -1, 64) + "%"
	}
	return text(strings.Join(parts, "; "))
}

// WriteXLSX writes the map as a workbook: a grid sheet (segments × stages,
// customers who reached the stage and their share of the segment, coloured
// by share) and a sheet of every cell's figures, one row per cell.
func WriteXLSX(m *Map, lang string, w io.Writer) error {
	f := excelize.NewFile()
	defer f.Close()
	zh := lang == "zh"
	grid, cells := "Map", "Cells"
	if zh {
		grid, cells = "经营地图", "单元格"
	}
	if err := f.SetSheetName("Sheet1", grid); err != nil {
		return portrait.Wrap(err, "cannot build the workbook")
	}
	if _, err := f.NewSheet(cells); err != nil {
		return portrait.Wrap(err, "cannot build the workbook")
	}
	set := func(sheet string, col, row int, v any) error {
		c, err := excelize.CoordinatesToCellName(col, row)
		if err != nil {
			return err
		}
		return f.SetCellValue(sheet, c, v)
	}
	l := func(en, cn string) string {
		if zh {
			return cn
		}
		return en
	}
	// grid: two columns per stage (customers, share)
	head := []string{l("Segment", "客群"), l("Customers", "客户数")}
	for i := range m.Stages {
		label := m.Stages[i]
		if i < len(m.StageLabels) {
			label = m.StageLabels[i]
		}
		head = append(head, label+" · "+l("customers", "客户"), label+" · "+l("share", "占比"))
	}
	for j, h := range head {
		if err := set(grid, j+1, 1, h); err != nil {
			return portrait.Wrap(err, "cannot build the workbook")
		}
	}
	for i, r := range m.Rows {
		row := []any{text(r.Name), r.Customers}
		for _, c := range r.Cells {
			row = append(row, c.Customers, c.Share)
		}
		for j, v := range row {
			if err := set(grid, j+1, i+2, v); err != nil {
				return portrait.Wrap(err, "cannot build the workbook")
			}
		}
	}
	if len(m.Rows) > 0 {
		pct, err := f.NewStyle(&excelize.Style{NumFmt: 10})
		if err != nil {
			return portrait.Wrap(err, "cannot build the workbook")
		}
		for k := range m.Stages {
			col, _ := excelize.ColumnNumberToName(4 + 2*k)
			ref := col + "2:" + col + strconv.Itoa(len(m.Rows)+1)
			if err := f.SetCellStyle(grid, col+"2", col+strconv.Itoa(len(m.Rows)+1), pct); err != nil {
				return portrait.Wrap(err, "cannot build the workbook")
			}
			if err := f.SetConditionalFormat(grid, ref, []excelize.ConditionalFormatOptions{{
				Type: "2_color_scale", Criteria: "=", MinType: "num", MaxType: "num", MinValue: "0", MaxValue: "1",
				MinColor: "#FFFFFF", MaxColor: "#3B82F6"}}); err != nil {
				return portrait.Wrap(err, "cannot build the workbook")
			}
		}
	}
	// cells: one row each
	ch := []string{l("Segment", "客群"), l("Stage", "阶段"), l("Customers", "客户数"), l("Share", "占比"), l("In stage now", "当前在此阶段"),
		l("Revenue", "收入"), "CLV", "NPS", "CSAT", l("Conversion", "转化率"), l("Drop-off", "流失率"), l("Median days to next", "到下一阶段天数中位数"),
		l("Churn probability", "流失概率"), l("Expected purchases 90d", "90天预计购买"), l("Needs", "需求"), l("Pain points", "痛点"),
		l("Channels", "渠道"), l("Actions", "建议行动")}
	for j, h := range ch {
		if err := set(cells, j+1, 1, h); err != nil {
			return portrait.Wrap(err, "cannot build the workbook")
		}
	}
	n := 2
	for _, r := range m.Rows {
		for k, c := range r.Cells {
			stage := c.Stage
			if k < len(m.StageLabels) {
				stage = m.StageLabels[k]
			}
			var acts []string
			for _, a := range c.Actions {
				acts = append(acts, a.Label)
			}
			row := []any{text(r.Name), stage, c.Customers, c.Share, c.Current, num(c.Revenue), num(c.CLV), num(c.NPS), num(c.CSAT),
				num(c.Conversion), num(c.DropOff), num(c.MedianDaysToNext), num(c.ChurnProbability), num(c.ExpectedPurchases90d),
				joinCounts(c.Needs), joinCounts(c.PainPoints), joinCounts(c.Channels), text(strings.Join(acts, "; "))}
			for j, v := range row {
				if err := set(cells, j+1, n, v); err != nil {
					return portrait.Wrap(err, "cannot build the workbook")
				}
			}
			n++
		}
	}
	if err := f.Write(w); err != nil {
		return portrait.Wrap(err, "cannot write the workbook")
	}
	return nil
}
