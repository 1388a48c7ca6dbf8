package importer_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"hash/crc32"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/portrait-cdp/portrait/importer"
)

// drain reads every row and returns the first error.
func drain(rd importer.Reader) error {
	defer rd.Close()
	for {
		if _, err := rd.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// workbook returns a small valid workbook, with its parts by name.
func workbook(t *testing.T) map[string][]byte {
	t.Helper()
	f := excelize.NewFile()
	f.SetSheetRow("Sheet1", "A1", &[]any{"email", "name"})
	f.SetSheetRow("Sheet1", "A2", &[]any{"a@example.com", "A"})
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string][]byte{}
	for _, zf := range zr.File {
		rc, _ := zf.Open()
		parts[zf.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return parts
}

// rezip writes parts back, sheet1 replaced by write (streamed, compressed
// hard), and returns the archive.
func rezip(t *testing.T, parts map[string][]byte, write func(io.Writer)) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestCompression) })
	for name, b := range parts {
		w, _ := zw.Create(name)
		if name == "xl/worksheets/sheet1.xml" {
			write(w)
			continue
		}
		w.Write(b)
	}
	zw.Close()
	return out.Bytes()
}

// The probe's XLSX bomb: a few hundred KB that unzip to tens of MB of
// worksheet. It is refused before it is unzipped, without allocating what
// it would expand to.
func TestXLSXBombRefused(t *testing.T) {
	parts := workbook(t)
	const unzipped = 24 << 20
	bomb := rezip(t, parts, func(w io.Writer) {
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`)
		row := []byte(strings.Repeat(`<row><c t="inlineStr"><is><t>AAAAAAAAAAAAAAAA</t></is></c></row>`, 1024))
		for n := 0; n < unzipped; n += len(row) {
			w.Write(row)
		}
		io.WriteString(w, `</sheetData></worksheet>`)
	})
	if len(bomb) > 400<<10 {
		t.Fatalf("the bomb is %d KB: not the probe's shape", len(bomb)>>10)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := importer.NewReaderLimits(importer.FormatXLSX, bytes.NewReader(bomb), "", importer.Limits{XLSXUnzipBytes: 8 << 20, XLSXXMLBytes: 4 << 20})
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "unzips to more than 8 MiB") {
		t.Fatalf("a %d KB workbook unzipping to %d MB was not refused: %v", len(bomb)>>10, unzipped>>20, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("refusing the bomb allocated %d MB", grew>>20)
	}
}

// A workbook whose directory claims 2 GB is refused by the default limits
// on the claim alone (and archive/zip would stop it at the claimed size if
// it lied the other way).
func TestXLSXClaiming2GBRefusedByDefault(t *testing.T) {
	parts := workbook(t)
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for name, b := range parts {
		if name != "xl/worksheets/sheet1.xml" {
			w, _ := zw.Create(name)
			w.Write(b)
			continue
		}
		var comp bytes.Buffer
		fw, _ := flate.NewWriter(&comp, flate.BestCompression)
		fw.Write(b)
		fw.Close()
		w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(b),
			CompressedSize64: uint64(comp.Len()), UncompressedSize64: 2 << 30})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(comp.Bytes())
	}
	zw.Close()
	_, err := importer.NewReader(importer.FormatXLSX, bytes.NewReader(out.Bytes()), "")
	if err == nil || !strings.Contains(err.Error(), "unzips to more than") {
		t.Fatalf("a workbook claiming 2 GB was opened: %v", err)
	}
}

// A worksheet whose rows reach column XFD (16,384 cells each) is refused.
func TestXLSXTooWideRefused(t *testing.T) {
	f := excelize.NewFile()
	f.SetSheetRow("Sheet1", "A1", &[]any{"email"})
	f.SetCellValue("Sheet1", "XFD2", "x")
	var buf bytes.Buffer
	f.Write(&buf)
	rd, err := importer.NewReader(importer.FormatXLSX, &buf, "")
	if err == nil {
		err = drain(rd)
	}
	if err == nil || !strings.Contains(err.Error(), "over the limit of 2000 columns") {
		t.Fatalf("a 16,384-column row was read: %v", err)
	}
}

func gz(t *testing.T, write func(io.Writer)) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	write(zw)
	zw.Close()
	return buf.Bytes()
}

// CSV: a gzip bomb, a line without end, and too many rows are refused with
// a clear message, within the limits' memory.
func TestCSVLimits(t *testing.T) {
	bomb := gz(t, func(w io.Writer) {
		io.WriteString(w, "email,name\n")
		row := []byte(strings.Repeat("a@example.com,A\n", 4096))
		for n := 0; n < 16<<20; n += len(row) {
			w.Write(row)
		}
	})
	rd, err := importer.NewReaderLimits(importer.FormatCSV, bytes.NewReader(bomb), "", importer.Limits{MaxBytes: 4 << 20})
	if err == nil {
		err = drain(rd)
	}
	if err == nil || !strings.Contains(err.Error(), "larger than 4 MiB once decompressed") {
		t.Errorf("gzip bomb: %v", err)
	}

	endless := gz(t, func(w io.Writer) {
		io.WriteString(w, "email,name\n\"")
		chunk := bytes.Repeat([]byte("A"), 1<<20)
		for range 8 {
			w.Write(chunk)
		}
	})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rd, err = importer.NewReaderLimits(importer.FormatCSV, bytes.NewReader(endless), "", importer.Limits{MaxLineBytes: 1 << 20})
	if err == nil {
		err = drain(rd)
	}
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "longer than 1 MiB") {
		t.Errorf("endless line: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
		t.Errorf("an endless line allocated %d MB", grew>>20)
	}

	rows := "email\n" + strings.Repeat("a@example.com\n", 11)
	rd, err = importer.NewReaderLimits(importer.FormatCSV, strings.NewReader(rows), "", importer.Limits{MaxRows: 10})
	if err == nil {
		err = drain(rd)
	}
	if err == nil || !strings.Contains(err.Error(), "more than 10 rows") {
		t.Errorf("row limit: %v", err)
	}
}

// One row of millions of cells (a 1 MB upload unzipping to hundreds of MB
// of "<c><v>1</v></c>") is refused before excelize builds the row in
// memory: probed on a live server, such a file took it past 1.6 GB before
// the column limit could refuse it. Here a row of 40 MB of XML must be
// refused within a small fraction of that in allocations; a row of many
// narrow cells and a row of one huge cell alike.
func TestXLSXHugeRowRefusedBeforeReading(t *testing.T) {
	for _, c := range []struct {
		name, cell, want string
		n                int
	}{
		{"many cells", `<c><v>1</v></c>`, "over the limit of 2000 columns", 2_700_000},
		{"one huge cell", ``, "MiB of XML", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			zw := zip.NewWriter(&out)
			for name, body := range map[string]string{
				"[Content_Types].xml":        `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>`,
				"_rels/.rels":                `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
				"xl/workbook.xml":            `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>`,
				"xl/_rels/workbook.xml.rels": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>`,
			} {
				w, _ := zw.Create(name)
				w.Write([]byte(body))
			}
			w, _ := zw.Create("xl/worksheets/sheet1.xml")
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>email</t></is></c></row><row r="2">`)
			if c.n > 0 {
				chunk := strings.Repeat(c.cell, 10_000)
				for i := 0; i < c.n/10_000; i++ {
					io.WriteString(w, chunk)
				}
			} else {
				io.WriteString(w, `<c r="A2" t="inlineStr"><is><t>`)
				chunk := strings.Repeat("a", 1<<20)
				for i := 0; i < 40; i++ {
					io.WriteString(w, chunk)
				}
				io.WriteString(w, `</t></is></c>`)
			}
			io.WriteString(w, `</row></sheetData></worksheet>`)
			zw.Close()
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			rd, err := importer.NewReader(importer.FormatXLSX, bytes.NewReader(out.Bytes()), "")
			if err == nil {
				err = drain(rd)
			}
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("a %d-byte upload with a 40 MB row: %v", out.Len(), err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 24<<20 {
				t.Errorf("refusing it allocated %d MiB (a %d KiB upload)", alloc>>20, out.Len()>>10)
			}
		})
	}
}

// Shared strings are read whole by excelize when it opens a workbook, each
// string a structure of its own: 4 million of them (a 10 MB upload; as
// one repeated string, far less) took 3.2 GB of allocations and 70 s of
// CPU when probed. A shared strings part over the limit is refused before.
func TestXLSXSharedStringsBombRefused(t *testing.T) {
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for name, body := range map[string]string{
		"[Content_Types].xml":        `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>`,
		"_rels/.rels":                `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
		"xl/workbook.xml":            `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>`,
		"xl/_rels/workbook.xml.rels": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>`,
		"xl/worksheets/sheet1.xml":   `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>1</v></c></row></sheetData></worksheet>`,
	} {
		w, _ := zw.Create(name)
		w.Write([]byte(body))
	}
	w, _ := zw.Create("xl/sharedStrings.xml")
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>email</t></si>`)
	chunk := strings.Repeat("<si><t>x</t></si>", 10_000)
	for i := 0; i < 420; i++ { // 71 MB
		io.WriteString(w, chunk)
	}
	io.WriteString(w, `</sst>`)
	zw.Close()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rd, err := importer.NewReader(importer.FormatXLSX, bytes.NewReader(out.Bytes()), "")
	if err == nil {
		err = drain(rd)
	}
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "shared strings") {
		t.Errorf("a %d KiB upload with 71 MB of shared strings: %v", out.Len()>>10, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 24<<20 {
		t.Errorf("refusing it allocated %d MiB (a %d KiB upload)", alloc>>20, out.Len()>>10)
	}
}
