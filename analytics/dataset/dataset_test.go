package dataset_test

import (
	"bytes"
	"compress/gzip"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/dataset"
	"github.com/portrait-cdp/portrait/analytics/internal/shareddata"
)

func TestCDNOWFormats(t *testing.T) {
	sample := "00004 0001 19970101  2   29.33\r\n00004 0001 19970118  2   29.73\r\n00021 0002 19970101  3   63.34\r\n"
	txs, err := dataset.ReadCDNOW(strings.NewReader(sample), dataset.CDNOWAuto)
	if err != nil {
		t.Fatal(err)
	}
	if len(txs) != 3 || txs[0].Customer != "1" || txs[2].Customer != "2" || txs[1].Amount != 29.73 || txs[1].Time.Format("2006-01-02") != "1997-01-18" {
		t.Errorf("sample parsed as %+v", txs)
	}
	master := " customer_id  date number_of_cds  dollar_value\n00001 19970101  1   11.77\n"
	txs, err = dataset.ReadCDNOW(strings.NewReader(master), dataset.CDNOWAuto)
	if err != nil || len(txs) != 1 || txs[0].Customer != "1" || txs[0].Quantity != 1 {
		t.Errorf("master parsed as %+v, %v", txs, err)
	}
	for name, in := range map[string]string{
		"bad date":    "00001 1997-01-01 1 2\n",
		"columns":     "00001 19970101 1\n",
		"mixed":       "00001 19970101 1 2\n00001 0001 19970101 1 2\n",
		"NaN":         "00001 19970101 1 NaN\n",
		"empty":       "",
		"header only": "id date cds dollars\n",
	} {
		if _, err := dataset.ReadCDNOW(strings.NewReader(in), dataset.CDNOWAuto); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: got %v, want an invalid error", name, err)
		}
	}
}

func TestCDNOWRealFiles(t *testing.T) {
	for file, want := range map[string]int{"cdnow/CDNOW_master.txt": 69659, "cdnow/CDNOW_sample.txt": 6919} {
		f, err := os.Open(shareddata.Path(t, file))
		if err != nil {
			t.Fatal(err)
		}
		txs, err := dataset.ReadCDNOW(f, dataset.CDNOWAuto)
		f.Close()
		if err != nil || len(txs) != want {
			t.Errorf("%s: %d transactions, %v; want %d", file, len(txs), err, want)
		}
	}
}

func TestBaskets(t *testing.T) {
	in := "\ufeffa, b ,a\n\n\"c, d\",e\r\n , ,\nf"
	got, err := dataset.ReadBaskets(strings.NewReader(in), 0)
	if err != nil {
		t.Fatal(err)
	}
	// Quoted fields are not CSV-aware: baskets split on every separator.
	want := [][]string{{"a", "b"}, {"\"c", "d\"", "e"}, {"f"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("baskets %q, want %q", got, want)
	}
}

func TestNumeric(t *testing.T) {
	in := "id,name,x,y\n1,a,1.5,2\n2,b,3,-4e1\n"
	m, err := dataset.ReadNumeric(strings.NewReader(in), []string{"y", "X"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 2 || !reflect.DeepEqual(m.Data, []float64{2, 1.5, -40, 3}) {
		t.Errorf("read %+v", m)
	}
	m, err = dataset.ReadNumeric(strings.NewReader(in), nil)
	if err != nil || !reflect.DeepEqual(m.Columns, []string{"id", "x", "y"}) {
		t.Errorf("auto columns %+v, %v", m, err)
	}
	for name, in := range map[string]string{
		"blank":   "x\n1\n \n",
		"text":    "x\nabc\n",
		"NaN":     "x\nNaN\n",
		"ragged":  "x,y\n1\n",
		"nothing": "",
		"no rows": "x\n",
	} {
		_, err := dataset.ReadNumeric(strings.NewReader(in), []string{"x"})
		if portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: got %v, want an invalid error", name, err)
		}
	}
	_, err = dataset.ReadNumeric(strings.NewReader("x\n1\n \n"), []string{"x"})
	if e, ok := err.(*portrait.Error); !ok || len(e.Details) != 1 || e.Details[0].Row != 3 || e.Details[0].Column != "x" {
		t.Errorf("blank cell error %#v should name line 3, column x", err)
	}
}

func TestLabelled(t *testing.T) {
	in := "id,tenure,charges,contract,notes,churn\n" +
		"a,1,10.5,monthly,x1,Yes\n" +
		"b,24, ,yearly,x2,No\n" +
		"c,12,30,monthly,x3,No\n" +
		"d,3,20,,x4,Yes\n" +
		"e,5,25,monthly,x5,\n"
	ds, err := dataset.ReadLabelled(strings.NewReader(in), dataset.LabelledOptions{Target: "churn", Positive: "Yes", IDColumn: "id", MaxLevels: 3})
	if err != nil {
		t.Fatal(err)
	}
	wantF := []string{"tenure", "charges", "charges missing", "contract=monthly", "contract=yearly"}
	if !reflect.DeepEqual(ds.Features, wantF) {
		t.Fatalf("features %q, want %q", ds.Features, wantF)
	}
	if ds.Rows != 4 || ds.Unlabelled != 1 || !reflect.DeepEqual(ds.Y, []float64{1, 0, 0, 1}) || !reflect.DeepEqual(ds.IDs, []string{"a", "b", "c", "d"}) {
		t.Errorf("rows %d, unlabelled %d, y %v, ids %v", ds.Rows, ds.Unlabelled, ds.Y, ds.IDs)
	}
	row := func(i int) []float64 { return ds.X[i*5 : (i+1)*5] }
	if r := row(1); r[0] != 24 || !math.IsNaN(r[1]) || r[2] != 1 || r[3] != 0 || r[4] != 1 {
		t.Errorf("row b = %v", r)
	}
	if r := row(3); r[3] != 0 || r[4] != 0 || r[2] != 0 {
		t.Errorf("row d (blank contract) = %v", r)
	}
	if len(ds.Dropped) != 1 || !strings.HasPrefix(ds.Dropped[0], "notes") {
		t.Errorf("dropped %v, want notes (4 levels > 3)", ds.Dropped)
	}
	for name, opt := range map[string]dataset.LabelledOptions{
		"no target":       {},
		"unknown target":  {Target: "nope"},
		"one class":       {Target: "churn", Positive: "Maybe"},
		"unparsed labels": {Target: "contract"},
	} {
		if _, err := dataset.ReadLabelled(strings.NewReader(in), opt); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: got %v, want an invalid error", name, err)
		}
	}
}

func TestTransactionsAndGzip(t *testing.T) {
	csv := "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n" +
		"1,A,x,2,2011-01-02 10:00:00,1.5,17850.0,UK\n" +
		"1,B,y,1,2011-01-02 10:00:00,3,17850.0,UK\n" +
		"C2,A,x,-1,2011-01-03 10:00:00,1.5,17850,UK\n" +
		"3,A,x,1,2011-01-04 10:00:00,1.5,,UK\n"
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(csv))
	w.Close()
	r, err := dataset.MaybeGunzip(&gz)
	if err != nil {
		t.Fatal(err)
	}
	txs, st, err := dataset.ReadTransactionsCSV(r, dataset.OnlineRetail)
	if err != nil {
		t.Fatal(err)
	}
	if st.Lines != 4 || st.Anonymous != 1 || len(txs) != 3 || txs[0].Customer != "17850" || txs[0].Amount != 3 || !dataset.IsCancellation(txs[2]) {
		t.Errorf("read %+v, %+v", txs, st)
	}
	if b := dataset.InvoiceBaskets(txs); !reflect.DeepEqual(b, [][]string{{"A", "B"}}) {
		t.Errorf("baskets %v", b)
	}
	if _, _, err := dataset.ReadTransactionsCSV(strings.NewReader("c,d,a\nx,yesterday,1\n"), dataset.TxColumns{Customer: "c", Time: "d", Amount: "a"}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("bad date: %v", err)
	}
}
