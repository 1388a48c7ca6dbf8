package dataset

import (
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
)

// TxColumns names the columns of a transaction CSV. Amount is taken from the
// Amount column, or as Quantity × Price when Amount is empty (order-line files
// such as Online Retail carry unit prices).
type TxColumns struct {
	Customer string
	Time     string
	Amount   string
	Quantity string
	Price    string
	Invoice  string // optional: groups lines into orders / baskets
	Item     string // optional: product of the line
	// KeepAnonymous keeps lines whose customer cell is blank (their Customer
	// is ""). Basket analysis wants them, customer models do not.
	KeepAnonymous bool
}

// OnlineRetail is the column layout of the UCI Online Retail file.
var OnlineRetail = TxColumns{
	Customer: "CustomerID", Time: "InvoiceDate", Quantity: "Quantity", Price: "UnitPrice",
	Invoice: "InvoiceNo", Item: "StockCode",
}

// TxRead reports what a transaction read skipped, so that nothing is dropped
// silently.
type TxRead struct {
	Lines     int // data lines read
	Anonymous int // lines skipped for a blank customer
}

var timeLayouts = []string{
	"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02", time.RFC3339, "2006-01-02T15:04:05",
	"20060102", "2006/01/02", "2006/01/02 15:04:05", "1/2/2006 15:04", "1/2/2006",
}

// ParseTime accepts the date and date-time layouts seen in exports: ISO 8601
// with or without time or zone, YYYYMMDD, and US month/day/year. Times without
// a zone are UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, portrait.Errorf(portrait.EINVALID, "unrecognised date %q (use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)", s)
}

// ReadTransactionsCSV reads order lines from a CSV with a header.
func ReadTransactionsCSV(r io.Reader, cols TxColumns) ([]Transaction, TxRead, error) {
	var st TxRead
	if cols.Customer == "" || cols.Time == "" {
		return nil, st, portrait.Errorf(portrait.EINVALID, "the customer and date columns must be named")
	}
	if cols.Amount == "" && (cols.Quantity == "" || cols.Price == "") {
		return nil, st, portrait.Errorf(portrait.EINVALID, "name an amount column, or quantity and price columns")
	}
	cr := newCSVReader(r)
	header, err := readHeader(cr)
	if err != nil {
		return nil, st, err
	}
	idx := func(name string) (int, error) {
		if name == "" {
			return -1, nil
		}
		return columnIndex(header, name)
	}
	var ci, ti, ai, qi, pi, ii, it int
	for _, p := range []struct {
		dst  *int
		name string
	}{{&ci, cols.Customer}, {&ti, cols.Time}, {&ai, cols.Amount}, {&qi, cols.Quantity}, {&pi, cols.Price}, {&ii, cols.Invoice}, {&it, cols.Item}} {
		if *p.dst, err = idx(p.name); err != nil {
			return nil, st, err
		}
	}
	num := func(rec []string, j, line int) (float64, error) {
		v, err := parseFloat(rec[j])
		if err != nil {
			return 0, cellError(line, header[j], "%v", err)
		}
		return v, nil
	}
	var out []Transaction
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, st, csvErr(err)
		}
		st.Lines++
		line, _ := cr.FieldPos(0)
		cust := strings.TrimSpace(rec[ci])
		if cust == "" && !cols.KeepAnonymous {
			st.Anonymous++
			continue
		}
		// Numeric customer ids exported from R or pandas gain a ".0".
		if strings.HasSuffix(cust, ".0") {
			if _, err := strconv.ParseUint(cust[:len(cust)-2], 10, 64); err == nil {
				cust = cust[:len(cust)-2]
			}
		}
		t, err := ParseTime(rec[ti])
		if err != nil {
			return nil, st, cellError(line, header[ti], "%s", portrait.ErrorMessage(err))
		}
		tx := Transaction{Customer: cust, Time: t, Quantity: 1}
		if qi >= 0 {
			if tx.Quantity, err = num(rec, qi, line); err != nil {
				return nil, st, err
			}
		}
		if ai >= 0 {
			if tx.Amount, err = num(rec, ai, line); err != nil {
				return nil, st, err
			}
		} else {
			p, err := num(rec, pi, line)
			if err != nil {
				return nil, st, err
			}
			tx.Amount = tx.Quantity * p
		}
		if ii >= 0 {
			tx.Invoice = strings.TrimSpace(rec[ii])
		}
		if it >= 0 {
			tx.Item = strings.TrimSpace(rec[it])
		}
		out = append(out, tx)
	}
	if len(out) == 0 {
		return nil, st, portrait.Errorf(portrait.EINVALID, "no transactions in input (%d lines, %d without a customer)", st.Lines, st.Anonymous)
	}
	return out, st, nil
}

// IsCancellation reports whether a line reverses an earlier sale: Online
// Retail marks such invoices with a leading C, and returns carry a negative
// quantity or amount.
func IsCancellation(t Transaction) bool {
	return strings.HasPrefix(t.Invoice, "C") || t.Quantity < 0 || t.Amount < 0
}

// InvoiceBaskets groups order lines into one basket per invoice (in order of
// first appearance), leaving out cancellations and lines without an item.
// Lines without an invoice each form their own basket.
func InvoiceBaskets(txs []Transaction) [][]string {
	pos := map[string]int{}
	var out [][]string
	for _, t := range txs {
		if IsCancellation(t) || t.Item == "" {
			continue
		}
		k, ok := pos[t.Invoice]
		if !ok || t.Invoice == "" {
			k = len(out)
			out = append(out, nil)
			if t.Invoice != "" {
				pos[t.Invoice] = k
			}
		}
		out[k] = append(out[k], t.Item)
	}
	for i, b := range out {
		sort.Strings(b)
		out[i] = dedupSorted(b)
	}
	return out
}

func dedupSorted(b []string) []string {
	if len(b) < 2 {
		return b
	}
	w := 1
	for _, s := range b[1:] {
		if s != b[w-1] {
			b[w] = s
			w++
		}
	}
	return b[:w]
}
