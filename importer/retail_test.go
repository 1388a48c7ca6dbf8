package importer_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/tracking"
)

// sharedData finds ../shared/data by walking up from the working directory,
// or PORTRAIT_SHARED.
func sharedData(t testing.TB) string {
	if d := os.Getenv("PORTRAIT_SHARED"); d != "" {
		return filepath.Join(d, "data")
	}
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, "shared", "data")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func retailFile(t testing.TB) string {
	d := sharedData(t)
	p := filepath.Join(d, "online_retail", "online_retail.csv.gz")
	if d == "" {
		t.Skip("shared data not found (set PORTRAIT_SHARED to the folder holding data/online_retail); skipping the Online Retail import")
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s is absent; skipping the Online Retail import", p)
	}
	return p
}

// retailPrefix writes the header and the first n lines of the file.
func retailPrefix(t testing.TB, n int) string {
	f, err := os.Open(retailFile(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "retail_prefix.csv")
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sc := bufio.NewScanner(zr)
	for i := 0; i <= n && sc.Scan(); i++ {
		w.WriteString(sc.Text() + "\n")
	}
	return out
}

// expectation is what the mapping's rules mean for the file, computed here
// straight from the CSV, independently of the importer.
type expectation struct {
	rows, rejected int64
	orders         int64   // groups of consecutive lines with ≥1 kept line
	revenue        float64 // Σ quantity × price over kept lines
}

func expect(t testing.TB, path string) expectation {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	cr := csv.NewReader(r)
	cr.Read()
	var e expectation
	last, kept := "", false
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		e.rows++
		inv := rec[0]
		if inv != last {
			if kept {
				e.orders++
			}
			last, kept = inv, false
		}
		q, _ := strconv.ParseFloat(rec[3], 64)
		p, _ := strconv.ParseFloat(rec[5], 64)
		if strings.HasPrefix(inv, "A") || (q < 0 && !strings.HasPrefix(inv, "C")) {
			e.rejected++
			continue
		}
		kept = true
		e.revenue += math.Round(q*p*100) / 100
	}
	if kept {
		e.orders++
	}
	return e
}

func retailMapping(t testing.TB) *importer.Mapping {
	m, err := importer.LoadMapping(filepath.Join("..", "docs", "examples", "online_retail.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func runRetail(t *testing.T, path string) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := expect(t, path)
	im := &importer.Importer{Log: db, Runs: db, Parser: tracking.New()}
	opt := importer.Options{Source: "online_retail", Format: "csv", Mapping: retailMapping(t)}
	in := fileInput(path)
	sum, err := im.Import(ctx, in, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rows %d accepted %d quarantined %d orders %d in %.1fs (%.0f rows/s)", sum.Rows, sum.Accepted, sum.Quarantined, sum.Derived.Accepted, sum.Seconds, sum.RowsPerSec)
	if sum.Rows != want.rows || sum.Accepted+sum.Duplicates+sum.Quarantined != sum.Rows {
		t.Fatalf("rows %d (want %d) ≠ accepted %d + duplicates %d + quarantined %d", sum.Rows, want.rows, sum.Accepted, sum.Duplicates, sum.Quarantined)
	}
	if sum.Quarantined != want.rejected {
		t.Errorf("quarantined %d, want %d", sum.Quarantined, want.rejected)
	}
	if sum.Derived.Accepted != want.orders || sum.Derived.Quarantined != 0 {
		t.Errorf("orders accepted %d quarantined %d, want %d and 0", sum.Derived.Accepted, sum.Derived.Quarantined, want.orders)
	}
	// The log holds exactly the accepted lines and orders, and the orders'
	// revenue adds up to the lines'.
	var lines, orders int64
	var revenue float64
	for after := int64(0); ; {
		evs, err := db.ReadLog(ctx, after, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			after = e.Seq
			switch e.Name {
			case "Order Completed", "Order Refunded":
				orders++
				var p struct{ Revenue float64 }
				json.Unmarshal(e.Properties, &p)
				revenue += p.Revenue
			case "Product Purchased", "Product Refunded":
				lines++
			default:
				t.Fatalf("unexpected event %q", e.Name)
			}
			if (e.UserID == "") == (e.AnonymousID == "") {
				t.Fatalf("event %s: want exactly one of userId %q / anonymousId %q", e.MessageID, e.UserID, e.AnonymousID)
			}
		}
	}
	if lines != sum.Accepted || orders != sum.Derived.Accepted {
		t.Errorf("log has %d lines and %d orders, summary says %d and %d", lines, orders, sum.Accepted, sum.Derived.Accepted)
	}
	if math.Abs(revenue-want.revenue) > 0.01*float64(orders) {
		t.Errorf("order revenue %.2f, line revenue %.2f", revenue, want.revenue)
	}
	q := countQuarantine(t, db, "online_retail")
	if q != want.rejected {
		t.Errorf("quarantine holds %d rows, want %d", q, want.rejected)
	}

	// Importing the same file again changes nothing.
	again, err := im.Import(ctx, in, opt)
	if err != nil {
		t.Fatal(err)
	}
	if again.Accepted != 0 || again.Duplicates != sum.Accepted || again.Derived.Accepted != 0 || again.ID != sum.ID {
		t.Errorf("re-import: accepted %d duplicates %d orders %d id %s, want 0, %d, 0, %s", again.Accepted, again.Duplicates, again.Derived.Accepted, again.ID, sum.Accepted, sum.ID)
	}
	if q2 := countQuarantine(t, db, "online_retail"); q2 != q {
		t.Errorf("re-import grew the quarantine from %d to %d", q, q2)
	}
}

// TestDatasetOnlineRetailPrefix imports the first 50,000 lines in the normal suite.
func TestDatasetOnlineRetailPrefix(t *testing.T) {
	runRetail(t, retailPrefix(t, 50000))
}

// TestDatasetOnlineRetailFull imports all 541,909 lines (about 30 s, minutes under
// -race): run with PORTRAIT_FULL_IMPORT=1 and without -short.
func TestDatasetOnlineRetailFull(t *testing.T) {
	if testing.Short() || os.Getenv("PORTRAIT_FULL_IMPORT") == "" {
		t.Skip("set PORTRAIT_FULL_IMPORT=1 (and omit -short) to import the full Online Retail file")
	}
	runRetail(t, retailFile(t))
}

// BenchmarkOnlineRetail compares the import with a raw CSV parse of the
// same file in the same run (the ratio is what to compare across machines).
// PORTRAIT_BENCH_FULL=1 uses the whole file instead of 50,000 lines.
func BenchmarkOnlineRetail(b *testing.B) {
	path := retailFile(b)
	if os.Getenv("PORTRAIT_BENCH_FULL") == "" {
		path = retailPrefix(b, 50000)
	}
	rows := expect(b, path).rows
	var rawNs, impNs float64
	b.Run("raw_csv_parse", func(b *testing.B) {
		for b.Loop() {
			f, _ := os.Open(path)
			var r io.Reader = f
			if strings.HasSuffix(path, ".gz") {
				r, _ = gzip.NewReader(f)
			}
			cr := csv.NewReader(r)
			cr.ReuseRecord = true
			for {
				if _, err := cr.Read(); err == io.EOF {
					break
				}
			}
			f.Close()
		}
		rawNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(rows)/(rawNs/1e9), "rows/s")
	})
	b.Run("import", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			db, err := sqlite.Open(context.Background(), sqlitetest.Dir(b))
			if err != nil {
				b.Fatal(err)
			}
			im := &importer.Importer{Log: db, Parser: tracking.New()}
			b.StartTimer()
			if _, err := im.Import(context.Background(), fileInput(path), importer.Options{Source: "online_retail", Format: "csv", Mapping: retailMapping(b)}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			db.Close()
			b.StartTimer()
		}
		impNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(rows)/(impNs/1e9), "rows/s")
	})
	if rawNs > 0 && impNs > 0 {
		b.Logf("%d rows: raw parse %.0f rows/s, import %.0f rows/s, import/raw = %.3f", rows, float64(rows)/(rawNs/1e9), float64(rows)/(impNs/1e9), rawNs/impNs)
	}
}
