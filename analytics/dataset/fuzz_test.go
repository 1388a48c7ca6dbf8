package dataset_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/dataset"
)

// Every reader must turn arbitrary bytes into data or an EINVALID error,
// never a panic or a foreign error type.

func checkErr(t *testing.T, err error) {
	t.Helper()
	if err != nil && portrait.ErrorCode(err) != portrait.EINVALID {
		t.Fatalf("error of code %q: %v", portrait.ErrorCode(err), err)
	}
}

func FuzzReadCDNOW(f *testing.F) {
	f.Add([]byte("00004 0001 19970101  2   29.33\r\n00004 0001 19970118  2   29.73\r\n"))
	f.Add([]byte(" customer_id  date number_of_cds  dollar_value\n00001 19970101  1   11.77\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		txs, err := dataset.ReadCDNOW(bytes.NewReader(b), dataset.CDNOWAuto)
		checkErr(t, err)
		if err == nil && len(txs) == 0 {
			t.Fatal("no error and no transactions")
		}
	})
}

func FuzzReadBaskets(f *testing.F) {
	f.Add([]byte("citrus fruit,semi-finished bread,margarine\nwhole milk\n"), byte(','))
	f.Add([]byte("\"a\"\"b\",c\r\n\n,,"), byte(';'))
	f.Fuzz(func(t *testing.T, b []byte, sep byte) {
		baskets, err := dataset.ReadBaskets(bytes.NewReader(b), rune(sep))
		checkErr(t, err)
		for _, bk := range baskets {
			seen := map[string]bool{}
			for _, it := range bk {
				if it == "" || seen[it] {
					t.Fatalf("basket %q has a blank or repeated item", bk)
				}
				seen[it] = true
			}
		}
	})
}

func FuzzReadNumeric(f *testing.F) {
	f.Add([]byte("CustomerID,Gender,Age\n1,Male,19\n2,Female,21\n"), "Age")
	f.Add([]byte("x,y\n1,\n"), "")
	f.Fuzz(func(t *testing.T, b []byte, cols string) {
		var names []string
		if cols != "" {
			names = strings.Split(cols, ",")
		}
		m, err := dataset.ReadNumeric(bytes.NewReader(b), names)
		checkErr(t, err)
		if err == nil && len(m.Data) != m.Rows*len(m.Columns) {
			t.Fatalf("%d values for %d × %d", len(m.Data), m.Rows, len(m.Columns))
		}
	})
}

func FuzzReadLabelled(f *testing.F) {
	f.Add([]byte("id,tenure,charges,contract,churn\na,1,10.5,monthly,Yes\nb,24, ,yearly,No\n"), "churn", "Yes")
	f.Add([]byte("y,x\n1,2\n0,\n"), "y", "")
	f.Fuzz(func(t *testing.T, b []byte, target, positive string) {
		ds, err := dataset.ReadLabelled(bytes.NewReader(b), dataset.LabelledOptions{Target: target, Positive: positive})
		checkErr(t, err)
		if err == nil && (len(ds.X) != ds.Rows*len(ds.Features) || len(ds.Y) != ds.Rows) {
			t.Fatalf("inconsistent shape: %d values, %d rows, %d features", len(ds.X), ds.Rows, len(ds.Features))
		}
	})
}

func FuzzReadTransactionsCSV(f *testing.F) {
	f.Add([]byte("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n536365,85123A,X,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := dataset.MaybeGunzip(bytes.NewReader(b))
		checkErr(t, err)
		if err != nil {
			return
		}
		_, _, err = dataset.ReadTransactionsCSV(r, dataset.OnlineRetail)
		checkErr(t, err)
	})
}
