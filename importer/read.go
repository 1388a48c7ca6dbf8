package importer

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/portrait-cdp/portrait"
)

// Formats the importer reads.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
	FormatXLSX  = "xlsx"
)

// Row is one data row of a file.
type Row struct {
	// Num is the 1-based number of the data row (the header is not a
	// row); Line is where it starts in the file (a CSV line, a JSONL line,
	// an XLSX sheet row), for messages people can find in an editor.
	Num, Line int
	Values    []string
	header    *Header
}

// Get returns the value of a column ("" when absent).
func (r *Row) Get(col string) string {
	i, ok := r.header.index[col]
	if !ok || i >= len(r.Values) {
		return ""
	}
	return r.Values[i]
}

// Map returns the row as column → value (non-empty values only).
func (r *Row) Map() map[string]string {
	m := make(map[string]string, len(r.Values))
	for i, v := range r.Values {
		if v != "" && i < len(r.header.names) {
			m[r.header.names[i]] = v
		}
	}
	return m
}

// Header names the columns. A JSONL header grows as new keys appear.
type Header struct {
	names []string
	index map[string]int
}

func newHeader(names []string) *Header {
	h := &Header{index: make(map[string]int, len(names))}
	for _, n := range names {
		h.add(n)
	}
	return h
}

func (h *Header) add(n string) int {
	if i, ok := h.index[n]; ok {
		return i
	}
	h.names = append(h.names, n)
	h.index[n] = len(h.names) - 1
	return len(h.names) - 1
}

// Names returns the column names.
func (h *Header) Names() []string { return h.names }

// Has reports whether the header has the column.
func (h *Header) Has(col string) bool { _, ok := h.index[col]; return ok }

// Reader yields the rows of a file.
type Reader interface {
	// Header is known before the first row for CSV and XLSX; for JSONL it
	// is the keys seen so far.
	Header() *Header
	// Next returns the next row, io.EOF at the end, or an EINVALID error
	// naming the row, line and column of a malformed file.
	Next() (*Row, error)
	// Fixed reports whether the header is complete before the first row.
	Fixed() bool
	// Close releases what the reader holds (XLSX keeps temporary files).
	Close() error
}

func fileErr(format string, args ...any) error {
	return portrait.Errorf(portrait.EINVALID, format, args...)
}

// countingReader counts the bytes read, for progress.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// decompress transparently gunzips r when it starts with the gzip magic,
// so exports can be imported as they were downloaded.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fileErr("the file looks gzip-compressed but cannot be read: %v", err)
		}
		zr.Multistream(true)
		return zr, nil
	}
	return br, nil
}

// NewReader returns a reader of format over r (gzip-compressed or not).
// sheet selects an XLSX worksheet ("" for the first). DefaultLimits apply.
func NewReader(format string, r io.Reader, sheet string) (Reader, error) {
	return NewReaderLimits(format, r, sheet, DefaultLimits)
}

// NewReaderLimits is NewReader with limits (unset fields: DefaultLimits).
func NewReaderLimits(format string, r io.Reader, sheet string, lim Limits) (Reader, error) {
	lim = lim.orDefault()
	var rd Reader
	switch format {
	case FormatCSV:
		dr, err := decompress(r)
		if err != nil {
			return nil, err
		}
		c, err := newCSVReader(&capped{r: dr, max: lim.MaxBytes, maxLine: lim.MaxLineBytes})
		if err != nil {
			return nil, err
		}
		if len(c.header.names) > lim.MaxColumns {
			return nil, fileErr("the header has %d columns, over the limit of %d", len(c.header.names), lim.MaxColumns)
		}
		rd = c
	case FormatJSONL:
		dr, err := decompress(r)
		if err != nil {
			return nil, err
		}
		rd = newJSONLReader(&capped{r: dr, max: lim.MaxBytes})
	case FormatXLSX:
		x, err := newXLSXReader(r, sheet, lim)
		if err != nil {
			return nil, err
		}
		rd = x
	default:
		return nil, fileErr("unknown format %q (want csv, jsonl or xlsx)", format)
	}
	return &rowCapped{Reader: rd, max: lim.MaxRows}, nil
}

// ---- CSV ----

type csvReader struct {
	r      *csv.Reader
	header *Header
	n      int
}

func newCSVReader(r io.Reader) (*csvReader, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // counted here, for a message with the row
	cr.ReuseRecord = true
	rec, err := cr.Read()
	if err == io.EOF {
		return nil, fileErr("the file is empty: a CSV import needs a header row")
	}
	if err != nil {
		return nil, csvErr(err, 0)
	}
	names := make([]string, len(rec))
	seen := map[string]int{}
	for i, v := range rec {
		v = strings.TrimSpace(strings.TrimPrefix(v, "\ufeff")) // Excel's UTF-8 BOM
		if !utf8.ValidString(v) {
			return nil, fileErr("line 1, column %d: the header is not valid UTF-8 (save the file as UTF-8)", i+1)
		}
		if v == "" {
			return nil, fileErr("line 1, column %d: the header has an empty column name", i+1)
		}
		if j, ok := seen[v]; ok {
			return nil, fileErr("line 1: columns %d and %d are both named %q", j+1, i+1, v)
		}
		seen[v] = i
		names[i] = v
	}
	return &csvReader{r: cr, header: newHeader(names)}, nil
}

func csvErr(err error, row int) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		where := fmt.Sprintf("line %d, column %d", pe.Line, pe.Column)
		if row > 0 {
			where = fmt.Sprintf("row %d (%s)", row, where)
		}
		return fileErr("malformed CSV at %s: %v", where, pe.Err)
	}
	return fileErr("cannot read the file: %v", err)
}

func (c *csvReader) Header() *Header { return c.header }
func (c *csvReader) Fixed() bool     { return true }
func (c *csvReader) Close() error    { return nil }

func (c *csvReader) Next() (*Row, error) {
	rec, err := c.r.Read()
	if err == io.EOF {
		return nil, io.EOF
	}
	c.n++
	if err != nil {
		return nil, csvErr(err, c.n)
	}
	line, _ := c.r.FieldPos(0)
	if len(rec) != len(c.header.names) {
		return nil, fileErr("malformed CSV at row %d (line %d): %d fields, but the header has %d columns", c.n, line, len(rec), len(c.header.names))
	}
	vals := make([]string, len(rec))
	for i, v := range rec {
		if !utf8.ValidString(v) {
			l, col := c.r.FieldPos(i)
			return nil, fileErr("row %d (line %d, column %d, %s): value is not valid UTF-8 (save the file as UTF-8)", c.n, l, col, c.header.names[i])
		}
		vals[i] = v
	}
	return &Row{Num: c.n, Line: line, Values: vals, header: c.header}, nil
}

// ---- JSONL ----

type jsonlReader struct {
	sc     *bufio.Scanner
	header *Header
	n      int
	line   int
}

func newJSONLReader(r io.Reader) *jsonlReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &jsonlReader{sc: sc, header: newHeader(nil)}
}

func (j *jsonlReader) Header() *Header { return j.header }
func (j *jsonlReader) Fixed() bool     { return false }
func (j *jsonlReader) Close() error    { return nil }

func (j *jsonlReader) Next() (*Row, error) {
	for j.sc.Scan() {
		j.line++
		b := bytes.TrimSpace(j.sc.Bytes())
		if len(b) == 0 {
			continue // blank lines separate nothing in JSONL
		}
		j.n++
		if !utf8.Valid(b) {
			return nil, fileErr("row %d (line %d): not valid UTF-8", j.n, j.line)
		}
		var obj map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			return nil, fileErr("malformed JSONL at row %d (line %d%s): %v", j.n, j.line, jsonCol(err), err)
		}
		if dec.More() {
			return nil, fileErr("malformed JSONL at row %d (line %d, column %d): more than one JSON value on the line", j.n, j.line, dec.InputOffset()+1)
		}
		if obj == nil {
			return nil, fileErr("malformed JSONL at row %d (line %d, column 1): each line must be a JSON object", j.n, j.line)
		}
		row := &Row{Num: j.n, Line: j.line, header: j.header}
		flatten("", obj, func(k, v string) {
			i := j.header.add(k)
			for len(row.Values) <= i {
				row.Values = append(row.Values, "")
			}
			row.Values[i] = v
		})
		return row, nil
	}
	if err := j.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fileErr("line %d is longer than 16 MB", j.line+1)
		}
		return nil, fileErr("cannot read the file at line %d: %v", j.line+1, err)
	}
	return nil, io.EOF
}

func jsonCol(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf(", column %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf(", column %d", te.Offset)
	}
	return ""
}

// flatten turns nested objects into dotted columns (address.city) so a
// mapping names JSONL fields the way it names CSV columns. Arrays stay JSON
// text; null is absent.
func flatten(prefix string, obj map[string]any, put func(k, v string)) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a stable column order for a growing header
	for _, k := range keys {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		switch v := obj[k].(type) {
		case nil:
		case map[string]any:
			flatten(name, v, put)
		case string:
			put(name, v)
		case json.Number:
			put(name, v.String())
		case bool:
			put(name, strconv.FormatBool(v))
		default:
			b, _ := json.Marshal(v)
			put(name, string(b))
		}
	}
}

// ---- XLSX ----

type xlsxReader struct {
	f        *excelize.File
	rows     *excelize.Rows
	header   *Header
	n        int
	sheetRow int
	width    int
	maxCols  int
}

func newXLSXReader(r io.Reader, sheet string, lim Limits) (rd *xlsxReader, err error) {
	// excelize can panic on some corrupt archives; a bad upload must be an
	// error, not a crash.
	defer func() {
		if v := recover(); v != nil {
			rd, err = nil, fileErr("the file is not a readable XLSX workbook: %v", v)
		}
	}()
	// The unzip limits are checked against the archive's directory before
	// anything is unzipped: a bomb is refused at the door.
	// excelize reads the archive into memory anyway (OpenReader); read
	// here, the worksheets can be checked row by row first.
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fileErr("cannot read the workbook: %v", err)
	}
	if err := checkWorksheetRows(data, lim); err != nil {
		return nil, err
	}
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{UnzipSizeLimit: lim.XLSXUnzipBytes, UnzipXMLSizeLimit: lim.XLSXXMLBytes})
	// excelize has no sentinel for it, only this message.
	if err != nil && strings.Contains(err.Error(), "unzip size exceeds") {
		return nil, fileErr("the workbook unzips to more than %d MiB: split it, or raise the import limit", lim.XLSXUnzipBytes>>20)
	}
	if err != nil {
		return nil, fileErr("the file is not a readable XLSX workbook: %v", err)
	}
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		f.Close()
		return nil, fileErr("the workbook has no worksheet")
	}
	if sheet == "" {
		sheet = sheets[0]
	} else if !contains(sheets, sheet) {
		f.Close()
		return nil, fileErr("the workbook has no sheet %q (it has %s)", sheet, strings.Join(sheets, ", "))
	}
	rows, err := f.Rows(sheet)
	if err != nil {
		f.Close()
		return nil, fileErr("cannot read sheet %q: %v", sheet, err)
	}
	x := &xlsxReader{f: f, rows: rows, maxCols: lim.MaxColumns}
	// The header is the first non-empty row.
	for {
		cells, err := x.nextCells()
		if err == io.EOF {
			x.close()
			return nil, fileErr("sheet %q is empty: an XLSX import needs a header row", sheet)
		}
		if err != nil {
			x.close()
			return nil, err
		}
		if allEmpty(cells) {
			continue
		}
		seen := map[string]int{}
		names := make([]string, len(cells))
		for i, v := range cells {
			v = strings.TrimSpace(v)
			col, _ := excelize.ColumnNumberToName(i + 1)
			if v == "" {
				x.close()
				return nil, fileErr("sheet row %d, column %s: the header has an empty column name", x.sheetRow, col)
			}
			if j, ok := seen[v]; ok {
				c1, _ := excelize.ColumnNumberToName(j + 1)
				x.close()
				return nil, fileErr("sheet row %d: columns %s and %s are both named %q", x.sheetRow, c1, col, v)
			}
			seen[v] = i
			names[i] = v
		}
		x.header = newHeader(names)
		x.width = len(names)
		return x, nil
	}
}

// checkWorksheetRows streams every worksheet of a workbook (the XML,
// unzipped a buffer at a time) and refuses one whose row is longer than
// lim.MaxLineBytes of XML or has more than lim.MaxColumns cells, before
// excelize reads it: excelize builds a whole row in memory before a caller
// can count its cells, and a row of millions of cells (a 1 MB upload
// unzipping to 500 MB of "<c><v>1</v></c>") took the server past 1.6 GB
// before the column limit could refuse it. A workbook whose directory
// claims more than the unzip limit is left to excelize, which refuses it
// before unzipping; what is unzipped here is stopped at that limit too,
// whatever the directory claims.
func checkWorksheetRows(data []byte, lim Limits) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil // not a zip: excelize says why
	}
	var claimed uint64
	for _, f := range zr.File {
		claimed += f.UncompressedSize64
	}
	if claimed > uint64(lim.XLSXUnzipBytes) {
		return nil
	}
	budget := lim.XLSXUnzipBytes
	for _, f := range zr.File {
		name := strings.ToLower(f.Name)
		if name == "xl/sharedstrings.xml" && lim.XLSXSharedStringsBytes > 0 {
			// Read whole by excelize at open: measured, not trusted
			// from the directory.
			rc, err := f.Open()
			if err != nil {
				return nil
			}
			n, _ := io.Copy(io.Discard, io.LimitReader(rc, lim.XLSXSharedStringsBytes+1))
			rc.Close()
			if n > lim.XLSXSharedStringsBytes {
				return fileErr("the workbook's text (its shared strings) is over %d MiB: save it as CSV, or split it", lim.XLSXSharedStringsBytes>>20)
			}
			continue
		}
		if !strings.HasPrefix(name, "xl/worksheets/") || !strings.HasSuffix(name, ".xml") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil // excelize says why
		}
		n, err := scanRows(io.LimitReader(rc, budget+1), f.Name, lim)
		rc.Close()
		if err != nil {
			return err
		}
		if budget -= n; budget < 0 {
			return fileErr("the workbook unzips to more than %d MiB: split it, or raise the import limit", lim.XLSXUnzipBytes>>20)
		}
	}
	return nil
}

// scanRows checks the rows of one worksheet's XML (rowBounds) and returns
// the bytes it read. Tags are matched by local name, so "<x:row>" counts.
func scanRows(r io.Reader, part string, lim Limits) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var read int64
	row, inRow := 0, false
	var rowBytes int64
	cells := 0
	var name []byte
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return read, nil
		}
		if err != nil {
			return read, nil // a broken stream: excelize says why
		}
		read++
		if inRow {
			rowBytes++
			if lim.MaxLineBytes > 0 && rowBytes > int64(lim.MaxLineBytes) {
				return read, fileErr("sheet row %d of %s is over %d MiB of XML: split it, or check the file", row, part, lim.MaxLineBytes>>20)
			}
		}
		if b != '<' {
			continue
		}
		// The tag's name, up to a space, '>' or '/' (after a leading '/').
		name = name[:0]
		closing := false
		for {
			c, err := br.ReadByte()
			if err != nil {
				return read, nil
			}
			read++
			if inRow {
				rowBytes++
			}
			if c == '/' && len(name) == 0 && !closing {
				closing = true
				continue
			}
			if c == ' ' || c == '>' || c == '/' || c == '\t' || c == '\n' || c == '\r' || len(name) > 32 {
				if c == '/' && !closing && bytes.Equal(localName(name), []byte("row")) {
					// <row .../>: an empty row
					inRow = false
					row++
					name = name[:0]
				}
				break
			}
			name = append(name, c)
		}
		switch local := localName(name); {
		case bytes.Equal(local, []byte("row")) && !closing:
			inRow, rowBytes, cells = true, 0, 0
			row++
		case bytes.Equal(local, []byte("row")) && closing:
			inRow = false
		case bytes.Equal(local, []byte("c")) && !closing && inRow:
			cells++
			if lim.MaxColumns > 0 && cells > lim.MaxColumns {
				return read, fileErr("sheet row %d of %s has more than %d cells, over the limit of %d columns", row, part, lim.MaxColumns, lim.MaxColumns)
			}
		}
	}
}

// localName is a tag's name without its namespace prefix.
func localName(n []byte) []byte {
	if i := bytes.LastIndexByte(n, ':'); i >= 0 {
		return n[i+1:]
	}
	return n
}

func (x *xlsxReader) nextCells() (cells []string, err error) {
	defer func() {
		if v := recover(); v != nil {
			cells, err = nil, fileErr("sheet row %d: the worksheet is corrupt: %v", x.sheetRow+1, v)
		}
	}()
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return nil, fileErr("sheet row %d: %v", x.sheetRow+1, err)
		}
		return nil, io.EOF
	}
	x.sheetRow++
	cells, err = x.rows.Columns()
	if err != nil {
		return nil, fileErr("sheet row %d: %v", x.sheetRow, err)
	}
	if x.maxCols > 0 && len(cells) > x.maxCols {
		return nil, fileErr("sheet row %d reaches column %d, over the limit of %d columns", x.sheetRow, len(cells), x.maxCols)
	}
	return cells, nil
}

func (x *xlsxReader) close() {
	if x.f == nil {
		return
	}
	x.rows.Close()
	x.f.Close()
	x.f = nil
}

func (x *xlsxReader) Close() error { x.close(); return nil }

func (x *xlsxReader) Header() *Header { return x.header }
func (x *xlsxReader) Fixed() bool     { return true }

func (x *xlsxReader) Next() (*Row, error) {
	for {
		cells, err := x.nextCells()
		if err == io.EOF {
			x.close()
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		// Spreadsheets are full of blank formatted rows; they are not data.
		if allEmpty(cells) {
			continue
		}
		x.n++
		if len(cells) > x.width {
			for i := x.width; i < len(cells); i++ {
				if strings.TrimSpace(cells[i]) != "" {
					col, _ := excelize.ColumnNumberToName(i + 1)
					return nil, fileErr("row %d (sheet row %d, column %s): a value outside the header's %d columns", x.n, x.sheetRow, col, x.width)
				}
			}
			cells = cells[:x.width]
		}
		vals := make([]string, x.width)
		copy(vals, cells)
		for i, v := range vals {
			if !utf8.ValidString(v) {
				col, _ := excelize.ColumnNumberToName(i + 1)
				return nil, fileErr("row %d (sheet row %d, column %s): value is not valid UTF-8", x.n, x.sheetRow, col)
			}
		}
		return &Row{Num: x.n, Line: x.sheetRow, Values: vals, header: x.header}, nil
	}
}

func allEmpty(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
