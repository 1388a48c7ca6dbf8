package clean

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// DateOptions says how to read ambiguous dates.
type DateOptions struct {
	// DayFirst reads 05/03/2024 as 5 March (the usual reading outside the
	// United States); false reads it as May 3. A part above 12 settles the
	// order whatever this says.
	DayFirst bool
	// ExcelSerial accepts a bare number of up to five digits (with an
	// optional fraction) as an Excel 1900-system serial date, as exports from
	// spreadsheets often contain. Off by default, because a bare number is
	// usually something else.
	ExcelSerial bool
}

// Date reads a date in a common format and returns it as ISO 8601:
// YYYY-MM-DD for a date, or RFC 3339 (an ISO 8601 profile) when the input
// carries a time of day. Accepted: 2024-03-05, 2024/3/5, 2024.3.5, 20240305,
// 2024年3月5日, 05/03/2024 and 5-3-2024 (order per DayFirst), RFC 3339
// timestamps, "2024-03-05 14:30[:00]", and Excel serial numbers when
// ExcelSerial is set. Full-width digits are folded first.
func Date(raw string, opt DateOptions) (string, error) {
	s := strings.TrimSpace(width.Fold.String(norm.NFKC.String(raw)))
	if s == "" {
		return "", invalid("date", raw, "empty")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.Format(time.RFC3339Nano), nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006/01/02 15:04:05", "2006/1/2 15:04:05", "2006/1/2 15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format("2006-01-02T15:04:05"), nil
		}
	}
	if opt.ExcelSerial && looksSerial(s) {
		return excelSerial(raw, s)
	}
	y, m, d, err := dateParts(raw, s, opt)
	if err != nil {
		return "", err
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Year() != y || int(t.Month()) != m || t.Day() != d {
		return "", invalid("date", raw, "no such day (the day or the month is out of range)")
	}
	return t.Format(time.DateOnly), nil
}

func looksSerial(s string) bool {
	intPart, frac, _ := strings.Cut(s, ".")
	if len(intPart) == 0 || len(intPart) > 7 {
		return false
	}
	for _, r := range intPart + frac {
		if r < '0' || r > '9' {
			return false
		}
	}
	return len(intPart) <= 5 || frac != ""
}

// excelSerial converts an Excel 1900-system serial: day 1 is 1900-01-01 and
// Excel counts a 29 February 1900 that never was (serial 60), so serials
// from 61 on are days since 1899-12-30.
func excelSerial(raw, s string) (string, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 1 || v >= 2958466 {
		return "", invalid("date", raw, "Excel serial out of range 1..2958465")
	}
	day := int(math.Floor(v))
	if day == 60 {
		return "", invalid("date", raw, "Excel serial 60 is 1900-02-29, which does not exist")
	}
	base := time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)
	if day < 60 {
		base = base.AddDate(0, 0, 1)
	}
	return base.AddDate(0, 0, day).Format(time.DateOnly), nil
}

func dateParts(raw, s string, opt DateOptions) (y, m, d int, err error) {
	var parts []string
	var cur strings.Builder
	for _, r := range s {
		if unicode.IsDigit(r) {
			cur.WriteRune(r)
			continue
		}
		if cur.Len() > 0 {
			parts = append(parts, cur.String())
			cur.Reset()
		}
		switch r {
		case '-', '/', '.', ' ', '年', '月', '日', '号', ',':
		default:
			return 0, 0, 0, invalid("date", raw, "unexpected character (not a digit or a separator)")
		}
	}
	if cur.Len() > 0 {
		parts = append(parts, cur.String())
	}
	atoi := func(p string) int { n, _ := strconv.Atoi(p); return n }
	switch {
	case len(parts) == 1 && len(parts[0]) == 8:
		p := parts[0]
		return atoi(p[:4]), atoi(p[4:6]), atoi(p[6:]), nil
	case len(parts) == 3 && len(parts[0]) == 4 && len(parts[1]) <= 2 && len(parts[2]) <= 2:
		return atoi(parts[0]), atoi(parts[1]), atoi(parts[2]), nil
	case len(parts) == 3 && len(parts[0]) <= 2 && len(parts[1]) <= 2 && len(parts[2]) == 4:
		a, b := atoi(parts[0]), atoi(parts[1])
		y = atoi(parts[2])
		switch {
		case a > 12 && b > 12:
			return 0, 0, 0, invalid("date", raw, "neither of the first two numbers can be a month")
		case a > 12:
			return y, b, a, nil
		case b > 12:
			return y, a, b, nil
		case opt.DayFirst:
			return y, b, a, nil
		default:
			return y, a, b, nil
		}
	}
	return 0, 0, 0, invalid("date", raw, "not a recognised date format")
}
