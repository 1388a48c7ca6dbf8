package linkage

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/portrait-cdp/portrait"
)

// ReadCSV reads a CSV file with a header row into records keyed by the
// header's column names. Spaces after a comma are ignored (FEBRL and many
// hand-made exports write ", "), a UTF-8 byte-order mark is dropped, and values
// are kept as strings: postcodes, dates and ids keep their leading zeros.
//
// A malformed file is an *portrait.Error with code EINVALID whose message and
// Details name the file, the row (1-based, the header is row 1) and the column.
func ReadCSV(r io.Reader, name string) (header []string, records []Record, err error) {
	// The whole file is held so that a parse error, which encoding/csv
	// reports as a byte offset, can be translated to a column number.
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, portrait.Wrap(err, name+": read failed")
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = false
	header, err = cr.Read()
	if errors.Is(err, io.EOF) {
		e := portrait.Errorf(portrait.EINVALID, "%s: row 1: empty file, expected a header row", name)
		e.Details = []portrait.ErrorDetail{{Row: 1, Reason: "empty file, expected a header row"}}
		return nil, nil, e
	}
	if err != nil {
		return nil, nil, csvError(name, data, nil, nil, err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	seen := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		if h == "" {
			return nil, nil, csvDetail(name, 1, i+1, "", "empty column name in header")
		}
		if j, dup := seen[h]; dup {
			return nil, nil, csvDetail(name, 1, i+1, h, fmt.Sprintf("duplicate column name %q (also column %d)", h, j+1))
		}
		seen[h] = i
	}
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return header, records, nil
		}
		if err != nil {
			return nil, nil, csvError(name, data, header, row, err)
		}
		line, _ := cr.FieldPos(0)
		if len(header) == 1 && len(row) == 1 && row[0] == "" {
			continue // a blank line in a one-column file
		}
		rec := make(Record, len(header))
		for i, v := range row {
			if !utf8.ValidString(v) {
				return nil, nil, csvDetail(name, line, i+1, header[i], "value is not valid UTF-8")
			}
			if v = strings.TrimSpace(v); v != "" {
				rec[header[i]] = v
			}
		}
		records = append(records, rec)
	}
}

func csvError(name string, data []byte, header, row []string, err error) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return portrait.Wrap(err, name+": read failed")
	}
	if errors.Is(pe.Err, csv.ErrFieldCount) {
		// The first column that should not be there, or the first missing.
		col := len(row) + 1
		colName := ""
		if len(row) > len(header) {
			col = len(header) + 1
		} else if col <= len(header) {
			colName = header[col-1]
		}
		return csvDetail(name, pe.StartLine, col, colName,
			fmt.Sprintf("%d fields, but the header has %d", len(row), len(header)))
	}
	col := fieldAt(data, pe.StartLine, pe.Line, pe.Column)
	colName := ""
	if col >= 1 && col <= len(header) {
		colName = header[col-1]
	}
	return csvDetail(name, pe.StartLine, col, colName, pe.Err.Error())
}

// fieldAt returns the 1-based field number at (line, byte column) of a
// record that starts on startLine, counting commas outside quotes.
func fieldAt(data []byte, startLine, line, column int) int {
	ln, i := 1, 0
	for ln < startLine && i < len(data) {
		if data[i] == '\n' {
			ln++
		}
		i++
	}
	field, quoted := 1, false
	col := 1
	for ; i < len(data); i++ {
		if ln == line && col >= column {
			break
		}
		switch c := data[i]; {
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			field++
		case c == '\n':
			ln++
			col = 0
		}
		col++
	}
	return field
}

func csvDetail(name string, row, col int, colName, reason string) error {
	where := fmt.Sprintf("row %d, column %d", row, col)
	if colName != "" {
		where += fmt.Sprintf(" (%s)", colName)
	}
	e := portrait.Errorf(portrait.EINVALID, "%s: %s: %s", name, where, reason)
	e.Details = []portrait.ErrorDetail{{Row: row, Column: colName, Field: fmt.Sprint(col), Reason: reason}}
	return e
}
