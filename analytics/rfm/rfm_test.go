package rfm_test

import (
	"math"
	"os"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/dataset"
	"github.com/portrait-cdp/portrait/analytics/internal/shareddata"
	"github.com/portrait-cdp/portrait/analytics/rfm"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestScoresAndSegments(t *testing.T) {
	var ps []rfm.Purchase
	// Ten customers c0..c9: c9 bought most recently, most often, most money.
	for c := 0; c < 10; c++ {
		id := string(rune('a' + c))
		for k := 0; k <= c; k++ {
			ps = append(ps, rfm.Purchase{Customer: id, Order: id + string(rune('0'+k)), Time: day("2024-01-01").AddDate(0, 0, 10*c+k), Amount: float64(10 * (c + 1))})
		}
	}
	// Outside the window, a refund and an anonymous line: all excluded.
	ps = append(ps,
		rfm.Purchase{Customer: "a", Time: day("2023-06-01"), Amount: 1e6},
		rfm.Purchase{Customer: "b", Time: day("2024-01-15"), Amount: -50},
		rfm.Purchase{Customer: "", Time: day("2024-01-15"), Amount: 5},
	)
	res, err := rfm.Analyze(ps, rfm.Options{From: day("2024-01-01"), To: day("2024-06-01")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Excluded != 3 || len(res.Customers) != 10 {
		t.Fatalf("excluded %d, customers %d; want 3 and 10", res.Excluded, len(res.Customers))
	}
	byID := map[string]rfm.Customer{}
	for _, c := range res.Customers {
		byID[c.ID] = c
	}
	j, a := byID["j"], byID["a"]
	if j.Cell != "555" || j.Segment != "Champions" || j.Frequency != 10 || j.Monetary != 1000 {
		t.Errorf("best customer %+v, want cell 555, Champions, 10 orders, 1000", j)
	}
	if a.Cell != "111" || a.Segment != "Hibernating" {
		t.Errorf("worst customer %+v, want cell 111, Hibernating", a)
	}
	// Recency is measured to To: j's last purchase is 2024-04-09 (day 99).
	if want := day("2024-06-01").Sub(day("2024-01-01").AddDate(0, 0, 99)).Hours() / 24; j.RecencyDays != want {
		t.Errorf("recency %v, want %v", j.RecencyDays, want)
	}
	// Quintiles of ten distinct values: two customers per score.
	count := map[int]int{}
	for _, c := range res.Customers {
		count[c.F]++
	}
	for s := 1; s <= 5; s++ {
		if count[s] != 2 {
			t.Errorf("frequency score %d has %d customers, want 2", s, count[s])
		}
	}
	total := 0
	for _, s := range res.Segments {
		total += s.Customers
	}
	if total != 10 || len(res.Grid) != 5 || res.Grid[4][4].Customers != 2 {
		t.Errorf("charts: segments total %d, grid %v", total, res.Grid)
	}
}

func TestTiesShareAScore(t *testing.T) {
	var ps []rfm.Purchase
	for c := 0; c < 8; c++ {
		n := 1
		if c >= 6 {
			n = 3
		}
		for k := 0; k < n; k++ {
			ps = append(ps, rfm.Purchase{Customer: string(rune('a' + c)), Time: day("2024-01-01").AddDate(0, 0, k*3+c), Amount: 5})
		}
	}
	res, err := rfm.Analyze(ps, rfm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Customers {
		if want := map[int]int{1: 1, 3: 4}[c.Frequency]; c.F != want {
			t.Errorf("customer %s with %d orders has F=%d, want %d", c.ID, c.Frequency, c.F, want)
		}
	}
}

func TestSegmentGridCoversAllCells(t *testing.T) {
	for r := 1; r <= 5; r++ {
		for f := 1; f <= 5; f++ {
			if rfm.SegmentName(r, f, 5) == "" {
				t.Errorf("no segment for R%d F%d", r, f)
			}
		}
	}
	for cell, want := range map[[2]int]string{{5, 5}: "Champions", {1, 5}: "Can't Lose Them", {5, 1}: "New Customers", {3, 3}: "Need Attention", {2, 3}: "At Risk", {4, 2}: "Potential Loyalists"} {
		if got := rfm.SegmentName(cell[0], cell[1], 5); got != want {
			t.Errorf("R%d F%d: %s, want %s", cell[0], cell[1], got, want)
		}
	}
}

func TestDatasetOnlineRetail(t *testing.T) {
	f, err := os.Open(shareddata.Path(t, "online_retail/online_retail.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := dataset.MaybeGunzip(f)
	if err != nil {
		t.Fatal(err)
	}
	txs, st, err := dataset.ReadTransactionsCSV(r, dataset.OnlineRetail)
	if err != nil {
		t.Fatal(err)
	}
	if st.Lines != 541909 || st.Anonymous != 135080 {
		t.Errorf("read %d lines, %d anonymous; want 541909 and 135080", st.Lines, st.Anonymous)
	}
	ps := make([]rfm.Purchase, len(txs))
	for i, tx := range txs {
		ps[i] = rfm.Purchase{Customer: tx.Customer, Order: tx.Invoice, Time: tx.Time, Amount: tx.Amount}
	}
	res, err := rfm.Analyze(ps, rfm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 4,372 customers appear; 33 of them only ever cancelled, and customer
	// 13256 only took free (zero-price) items: 4,338 spent money.
	if len(res.Customers) != 4338 {
		t.Errorf("%d customers with purchases, want 4338", len(res.Customers))
	}
	if got := res.AsOf.Format(time.DateOnly); got != "2011-12-10" {
		t.Errorf("as of %s, want the day after the last invoice, 2011-12-10", got)
	}
	var revenue float64
	for _, s := range res.Segments {
		revenue += s.Revenue
	}
	if revenue < 8.8e6 || revenue > 9.0e6 {
		t.Errorf("revenue of customers with ids %.0f, want about 8.9 million", revenue)
	}
	// A window keeps only its own purchases.
	q4, err := rfm.Analyze(ps, rfm.Options{From: day("2011-10-01"), To: day("2012-01-01")})
	if err != nil {
		t.Fatal(err)
	}
	if len(q4.Customers) >= len(res.Customers) || q4.Excluded <= res.Excluded {
		t.Errorf("Q4 window: %d customers, %d excluded", len(q4.Customers), q4.Excluded)
	}
}

func TestDegenerate(t *testing.T) {
	for name, c := range map[string]struct {
		ps  []rfm.Purchase
		opt rfm.Options
	}{
		"nothing":      {nil, rfm.Options{}},
		"only refunds": {[]rfm.Purchase{{Customer: "a", Time: day("2024-01-01"), Amount: -1}}, rfm.Options{}},
		"NaN amount":   {[]rfm.Purchase{{Customer: "a", Time: day("2024-01-01"), Amount: math.NaN()}}, rfm.Options{}},
		"reversed":     {[]rfm.Purchase{{Customer: "a", Time: day("2024-01-01"), Amount: 1}}, rfm.Options{From: day("2024-02-01"), To: day("2024-01-01")}},
		"one bin":      {[]rfm.Purchase{{Customer: "a", Time: day("2024-01-01"), Amount: 1}}, rfm.Options{Bins: 1}},
	} {
		if _, err := rfm.Analyze(c.ps, c.opt); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: got %v, want an invalid error", name, err)
		}
	}
	// One customer: defined scores.
	res, err := rfm.Analyze([]rfm.Purchase{{Customer: "a", Time: day("2024-01-01"), Amount: 3}}, rfm.Options{})
	if err != nil || res.Customers[0].Cell != "111" {
		t.Errorf("single customer: %+v, %v", res, err)
	}
}
