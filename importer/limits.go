package importer

import (
	"bytes"
	"io"
)

// Limits bound what one file may cost, whatever it claims: a compressed
// file can expand a thousandfold (a 300 KB XLSX to gigabytes), and a CSV
// line without an end is read whole into memory.
type Limits struct {
	// MaxBytes bounds the decompressed bytes of a CSV or JSONL stream.
	MaxBytes int64
	// MaxLineBytes bounds one CSV line (JSONL has its own 16 MiB bound).
	MaxLineBytes int
	// MaxRows bounds the data rows of a file.
	MaxRows int
	// MaxColumns bounds the columns of a row (an XLSX cell at column XFD
	// makes every row 16,384 cells wide).
	MaxColumns int
	// XLSXUnzipBytes bounds the total unzipped size of a workbook, checked
	// before anything is unzipped (excelize's UnzipSizeLimit).
	XLSXUnzipBytes int64
	// XLSXXMLBytes is how much of one worksheet is unzipped into memory;
	// beyond it excelize uses a temporary file (UnzipXMLSizeLimit).
	XLSXXMLBytes int64
	// XLSXSharedStringsBytes bounds a workbook's shared strings part,
	// which excelize reads whole into memory at open, each string a
	// structure of its own: 80 MB of them took 3.2 GB of allocations and
	// 70 s of CPU, and "<si><t>x</t></si>" compresses a thousandfold.
	XLSXSharedStringsBytes int64
}

// DefaultLimits are generous for real customer files and far below what
// would hurt the server.
var DefaultLimits = Limits{
	MaxBytes:       4 << 30,
	MaxLineBytes:   16 << 20,
	MaxRows:        20_000_000,
	MaxColumns:     2000,
	XLSXUnzipBytes: 512 << 20,
	XLSXXMLBytes:   16 << 20,
	// A workbook with more text than this is best imported as CSV.
	XLSXSharedStringsBytes: 64 << 20,
}

// orDefault fills unset fields from DefaultLimits.
func (l Limits) orDefault() Limits {
	d := DefaultLimits
	if l.MaxBytes > 0 {
		d.MaxBytes = l.MaxBytes
	}
	if l.MaxLineBytes > 0 {
		d.MaxLineBytes = l.MaxLineBytes
	}
	if l.MaxRows > 0 {
		d.MaxRows = l.MaxRows
	}
	if l.MaxColumns > 0 {
		d.MaxColumns = l.MaxColumns
	}
	if l.XLSXUnzipBytes > 0 {
		d.XLSXUnzipBytes = l.XLSXUnzipBytes
	}
	if l.XLSXSharedStringsBytes > 0 {
		d.XLSXSharedStringsBytes = l.XLSXSharedStringsBytes
	}
	if l.XLSXXMLBytes > 0 {
		d.XLSXXMLBytes = min(l.XLSXXMLBytes, d.XLSXUnzipBytes)
	}
	return d
}

// capped stops a decompressed stream at max bytes and a line at maxLine.
type capped struct {
	r       io.Reader
	n, max  int64
	line    int // bytes since the last newline
	maxLine int
}

func (c *capped) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return 0, fileErr("the file is larger than %d MiB once decompressed: split it, or raise the import limit", c.max>>20)
	}
	if c.maxLine > 0 {
		if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
			c.line = n - i - 1
		} else {
			c.line += n
		}
		if c.line > c.maxLine {
			return 0, fileErr("a line of the file is longer than %d MiB: this is not a CSV file a person exported", c.maxLine>>20)
		}
	}
	return n, err
}

// rowCapped refuses rows beyond a count and wider than a bound.
type rowCapped struct {
	Reader
	n, max, cols int
}

func (r *rowCapped) Next() (*Row, error) {
	row, err := r.Reader.Next()
	if err != nil {
		return row, err
	}
	r.n++
	if r.n > r.max {
		return nil, fileErr("the file has more than %d rows: split it, or raise the import limit", r.max)
	}
	return row, nil
}
