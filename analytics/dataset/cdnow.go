package dataset

import (
	"bufio"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Transaction is one purchase line: who bought, when, how many units and for
// how much. Invoice is empty when the source has no order identifier.
type Transaction struct {
	Customer string
	Invoice  string
	Item     string
	Time     time.Time
	Quantity float64
	Amount   float64
}

// CDNOW formats. The master file has four columns (customer, date, CDs,
// dollars); the 1/10th sample used by Fader, Hardie & Lee has five (master id,
// sample id, date, CDs, dollars).
const (
	CDNOWAuto   = ""
	CDNOWMaster = "master"
	CDNOWSample = "sample"
)

// ReadCDNOW reads a CDNOW transaction log: whitespace-separated columns, CRLF
// or LF line ends, an optional header line. format is CDNOWMaster,
// CDNOWSample or CDNOWAuto (decided by the column count of the first data
// line). Sample files are keyed by the sample id, as the published summary
// tables are.
func ReadCDNOW(r io.Reader, format string) ([]Transaction, error) {
	if format != CDNOWAuto && format != CDNOWMaster && format != CDNOWSample {
		return nil, portrait.Errorf(portrait.EINVALID, "unknown CDNOW format %q (want master or sample)", format)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var out []Transaction
	line := 0
	seen := false
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		f[0] = strings.TrimPrefix(f[0], "\ufeff")
		if !seen {
			seen = true
			// A header names its columns; data starts with a numeric id.
			if _, err := strconv.ParseUint(f[0], 10, 64); err != nil {
				continue
			}
		}
		if format == CDNOWAuto {
			switch len(f) {
			case 4:
				format = CDNOWMaster
			case 5:
				format = CDNOWSample
			default:
				return nil, lineError(line, "CDNOW lines have 4 (master) or 5 (sample) columns, found %d", len(f))
			}
		}
		want := 4
		if format == CDNOWSample {
			want = 5
		}
		if len(f) != want {
			return nil, lineError(line, "want %d columns for the CDNOW %s format, found %d", want, format, len(f))
		}
		id := f[0]
		if format == CDNOWSample {
			id, f = f[1], f[1:]
		}
		t, err := time.Parse("20060102", f[1])
		if err != nil {
			return nil, lineError(line, "date %q is not YYYYMMDD", f[1])
		}
		q, err := strconv.ParseFloat(f[2], 64)
		if err != nil || math.IsNaN(q) || math.IsInf(q, 0) {
			return nil, lineError(line, "quantity %q is not a number", f[2])
		}
		amt, err := strconv.ParseFloat(f[3], 64)
		if err != nil || math.IsNaN(amt) || math.IsInf(amt, 0) {
			return nil, lineError(line, "amount %q is not a number", f[3])
		}
		out = append(out, Transaction{Customer: trimZeros(id), Time: t, Quantity: q, Amount: amt})
	}
	if err := sc.Err(); err != nil {
		return nil, lineError(line+1, "%v", err)
	}
	if len(out) == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "no CDNOW transactions in input")
	}
	return out, nil
}

// trimZeros drops the zero padding of CDNOW ids so that "00004" matches the
// "4" of the published summary tables.
func trimZeros(id string) string {
	t := strings.TrimLeft(id, "0")
	if t == "" && id != "" {
		return "0"
	}
	return t
}
