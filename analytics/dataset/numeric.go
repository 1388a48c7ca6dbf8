package dataset

import (
	"encoding/csv"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/portrait-cdp/portrait"
)

// Numeric is a dense row-major matrix read from named CSV columns.
type Numeric struct {
	Columns []string
	Rows    int
	Data    []float64 // Rows × len(Columns), row-major
}

// At returns the value at row i, column j.
func (m *Numeric) At(i, j int) float64 { return m.Data[i*len(m.Columns)+j] }

func newCSVReader(r io.Reader) *csv.Reader {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 0 // every row as wide as the header
	cr.ReuseRecord = true
	cr.LazyQuotes = true
	return cr
}

func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return lineError(pe.Line, "%v", pe.Err)
	}
	return portrait.Wrap(err, "reading CSV")
}

func readHeader(cr *csv.Reader) ([]string, error) {
	h, err := cr.Read()
	if err == io.EOF {
		return nil, portrait.Errorf(portrait.EINVALID, "empty CSV: no header line")
	}
	if err != nil {
		return nil, csvErr(err)
	}
	out := make([]string, len(h))
	for i, c := range h {
		out[i] = trimCell(c)
	}
	return out, nil
}

func columnIndex(header []string, name string) (int, error) {
	for i, h := range header {
		if h == name {
			return i, nil
		}
	}
	for i, h := range header {
		if strings.EqualFold(h, name) {
			return i, nil
		}
	}
	return -1, portrait.Errorf(portrait.EINVALID, "no column %q in header (columns: %s)", name, strings.Join(header, ", "))
}

// ReadNumeric reads the named columns of a CSV file with a header line into a
// matrix. With no names it takes every column whose cells are all numbers,
// which suits files of features only. A blank or non-numeric cell in a chosen
// column is an error naming its line and column, because distance-based
// methods cannot place a point with a missing coordinate.
func ReadNumeric(r io.Reader, columns []string) (*Numeric, error) {
	cr := newCSVReader(r)
	header, err := readHeader(cr)
	if err != nil {
		return nil, err
	}
	var records [][]string
	auto := len(columns) == 0
	idx := make([]int, 0, len(header))
	if auto {
		cr.ReuseRecord = false
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, csvErr(err)
			}
			records = append(records, rec)
		}
		for j, name := range header {
			ok := len(records) > 0
			for _, rec := range records {
				if _, err := parseFloat(rec[j]); err != nil {
					ok = false
					break
				}
			}
			if ok {
				idx = append(idx, j)
				columns = append(columns, name)
			}
		}
		if len(idx) == 0 {
			return nil, portrait.Errorf(portrait.EINVALID, "no all-numeric columns in the CSV; name the columns to use")
		}
	} else {
		for _, c := range columns {
			j, err := columnIndex(header, strings.TrimSpace(c))
			if err != nil {
				return nil, err
			}
			idx = append(idx, j)
		}
	}
	m := &Numeric{Columns: append([]string(nil), columns...)}
	add := func(rec []string, line int) error {
		for _, j := range idx {
			v, err := parseFloat(rec[j])
			if err != nil {
				return cellError(line, header[j], "%v", err)
			}
			m.Data = append(m.Data, v)
		}
		m.Rows++
		return nil
	}
	if auto {
		for i, rec := range records {
			if err := add(rec, i+2); err != nil {
				return nil, err
			}
		}
	} else {
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, csvErr(err)
			}
			line, _ := cr.FieldPos(0)
			if err := add(rec, line); err != nil {
				return nil, err
			}
		}
	}
	if m.Rows == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "CSV has a header but no data rows")
	}
	return m, nil
}

// parseFloat parses a finite number; blank cells, NaN and infinities are
// errors with a message fit for the user.
func parseFloat(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("blank cell where a number is needed")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, errors.New("not a number: " + strconv.Quote(s))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, errors.New("not a finite number: " + strconv.Quote(s))
	}
	return v, nil
}
