package segment

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/portrait-cdp/portrait"
)

// UploadReport says how an uploaded list of identifiers matched profiles.
// Every data row is counted once: matched (an identifier of it belongs to
// a profile), unmatched (its identifiers are valid but belong to nobody),
// invalid (no cell holds an identifier that can be standardised).
type UploadReport struct {
	Rows      int     `json:"rows"`
	Matched   int     `json:"matched"`
	Unmatched int     `json:"unmatched"`
	Invalid   int     `json:"invalid"`
	MatchRate float64 `json:"match_rate"` // matched / rows
	// Profiles is how many distinct profiles the matched rows name (two
	// rows can name one customer).
	Profiles int `json:"profiles"`
	// Columns are the identifier types read, by column header.
	Columns []string `json:"columns"`
	// Problems lists the first invalid rows with the reason.
	Problems []UploadProblem `json:"problems,omitempty"`
}

// UploadProblem is one invalid row.
type UploadProblem struct {
	Row    int    `json:"row"` // 1-based, the header is row 1
	Reason string `json:"reason"`
}

// ListRow is one data row's identifiers, standardised.
type ListRow struct {
	Row int
	IDs []portrait.Identifier
}

// MaxListRows bounds an uploaded list.
const MaxListRows = 1_000_000

// maxProblems is how many invalid rows a report details.
const maxProblems = 20

// ReadIdentifierList reads a CSV or XLSX list of identifiers. The first
// row is a header; columns named by an identifier type (phone, email,
// user_id, id_card, or any type listed in types) are read, other columns
// ignored. A file of one unnamed column takes defaultType. Each value is
// standardised with normalize (as the identity graph keys it); rows with
// no valid identifier are counted invalid in the returned report, whose
// match counts the caller fills in.
func ReadIdentifierList(r io.Reader, format, defaultType string, types []string, normalize func(typ, v string) (string, bool)) ([]ListRow, *UploadReport, error) {
	records, err := readTable(r, format)
	if err != nil {
		return nil, nil, err
	}
	if len(records) == 0 {
		return nil, nil, invalid("the list is empty: the first row names the identifier columns (phone, email, user_id...)")
	}
	known := map[string]bool{portrait.IDPhone: true, portrait.IDEmail: true, portrait.IDUserID: true, "id_card": true}
	for _, t := range types {
		known[t] = true
	}
	header := records[0]
	cols := map[int]string{}
	rep := &UploadReport{Columns: []string{}}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if known[h] {
			cols[i] = h
			rep.Columns = append(rep.Columns, h)
		}
	}
	data := records[1:]
	if len(cols) == 0 {
		if len(header) != 1 || defaultType == "" {
			return nil, nil, invalid("no column is named by an identifier type (phone, email, user_id, id_card); name one in the header, or upload one column with ?type=")
		}
		// one column without a known header: the header may be a value
		cols[0] = defaultType
		rep.Columns = append(rep.Columns, defaultType)
		if _, ok := normalize(defaultType, header[0]); ok {
			data = records
		}
	}
	if len(data) > MaxListRows {
		return nil, nil, invalid("the list has %d rows; at most %d", len(data), MaxListRows)
	}
	first := 2
	if len(data) == len(records) {
		first = 1
	}
	var rows []ListRow
	for i, rec := range data {
		row := ListRow{Row: first + i}
		var reason string
		for c, typ := range cols {
			if c >= len(rec) {
				continue
			}
			v := strings.TrimSpace(rec[c])
			if v == "" {
				continue
			}
			nv, ok := normalize(typ, v)
			if !ok {
				reason = typ + " " + clip(v) + " cannot be standardised"
				continue
			}
			row.IDs = append(row.IDs, portrait.Identifier{Type: typ, Value: nv})
		}
		rep.Rows++
		if len(row.IDs) == 0 {
			rep.Invalid++
			if reason == "" {
				reason = "no identifier"
			}
			if len(rep.Problems) < maxProblems {
				rep.Problems = append(rep.Problems, UploadProblem{Row: row.Row, Reason: reason})
			}
			continue
		}
		rows = append(rows, row)
	}
	return rows, rep, nil
}

// clip shortens a value quoted in a reason.
func clip(v string) string {
	if len(v) > 40 {
		v = v[:40]
		for !utf8.ValidString(v) {
			v = v[:len(v)-1]
		}
		v += "…"
	}
	return `"` + v + `"`
}

// readTable reads every row of a CSV (UTF-8, with or without a byte order
// mark) or of the first sheet of an XLSX workbook.
func readTable(r io.Reader, format string) ([][]string, error) {
	switch format {
	case "csv", "":
		cr := csv.NewReader(r)
		cr.FieldsPerRecord = -1
		cr.LazyQuotes = true
		var out [][]string
		for {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return nil, invalid("the CSV cannot be read: %v", err)
			}
			if !utf8.ValidString(strings.Join(rec, "")) {
				return nil, invalid("the CSV is not UTF-8 (row %d); save it as CSV UTF-8", len(out)+1)
			}
			out = append(out, rec)
		}
	case "xlsx":
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		f, err := excelize.OpenReader(bytes.NewReader(b))
		if err != nil {
			return nil, invalid("the XLSX cannot be read: %v", err)
		}
		defer f.Close()
		sheets := f.GetSheetList()
		if len(sheets) == 0 {
			return nil, invalid("the workbook has no sheet")
		}
		rows, err := f.GetRows(sheets[0])
		if err != nil {
			return nil, invalid("the XLSX cannot be read: %v", err)
		}
		return rows, nil
	}
	return nil, invalid("format must be csv or xlsx, not %q", format)
}
