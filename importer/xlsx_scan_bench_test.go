package importer_test

import (
	"bytes"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/portrait-cdp/portrait/importer"
)

// BenchmarkXLSXRead reads a workbook of 20,000 rows of 8 columns through
// the XLSX reader (the rows check, then excelize), reporting CPU per row
// from getrusage: what checking each worksheet's rows before excelize
// costs a real file.
func BenchmarkXLSXRead(b *testing.B) {
	f := excelize.NewFile()
	sw, _ := f.NewStreamWriter("Sheet1")
	sw.SetRow("A1", []any{"user_id", "email", "phone", "name", "city", "plan", "age", "note"})
	for i := 2; i <= 20_001; i++ {
		cell, _ := excelize.CoordinatesToCellName(1, i)
		sw.SetRow(cell, []any{fmt.Sprintf("u-%d", i), fmt.Sprintf("u%d@example.com", i), "13800138000", "张伟", "北京市", "gold", i % 90, "a note of some length for the row"})
	}
	sw.Flush()
	var buf bytes.Buffer
	f.Write(&buf)
	var used time.Duration
	b.ResetTimer()
	for range b.N {
		var before, after syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		rd, err := importer.NewReader(importer.FormatXLSX, bytes.NewReader(buf.Bytes()), "")
		if err != nil {
			b.Fatal(err)
		}
		if err := drain(rd); err != nil {
			b.Fatal(err)
		}
		syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		used += time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	}
	b.ReportMetric(float64(used.Nanoseconds())/float64(b.N*20_000), "cpu-ns/row")
}
