package traits_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// sharedData finds ../shared/data by walking up from the working directory
// (or PORTRAIT_SHARED).
func sharedData(t testing.TB) string {
	if d := os.Getenv("PORTRAIT_SHARED"); d != "" {
		return filepath.Join(d, "data")
	}
	dir, _ := os.Getwd()
	for {
		if st, err := os.Stat(filepath.Join(dir, "shared", "data")); err == nil && st.IsDir() {
			return filepath.Join(dir, "shared", "data")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("shared/data not found above the working directory (set PORTRAIT_SHARED): skipping the CDNOW test")
		}
		dir = parent
	}
}

type cdLine struct {
	cust  string
	date  time.Time
	cents int64
}

func readCDNOW(t testing.TB) []cdLine {
	path := filepath.Join(sharedData(t), "cdnow", "CDNOW_master.txt")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("CDNOW data absent (%v): skipping", err)
	}
	defer f.Close()
	var out []cdLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 4 || fs[0] == "customer_id" {
			continue
		}
		d, err := time.Parse("20060102", fs[1])
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		dollars, err := strconv.ParseFloat(fs[3], 64)
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, cdLine{cust: fs[0], date: d, cents: int64(math.Round(dollars * 100))})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDatasetCDNOW loads the CDNOW master file as purchases and checks the RFM and
// lifecycle distributions against a plain computation over the file.
func TestDatasetCDNOW(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("loads 69,659 events: too slow under -short or -race")
	}
	lines := readCDNOW(t)
	now := time.Date(1998, 7, 1, 0, 0, 0, 0, time.UTC)

	// The independent computation.
	type cust struct {
		n     int
		last  time.Time
		cents int64
	}
	cs := map[string]*cust{}
	for _, l := range lines {
		c := cs[l.cust]
		if c == nil {
			c = &cust{}
			cs[l.cust] = c
		}
		c.n++
		c.cents += l.cents
		if l.date.After(c.last) {
			c.last = l.date
		}
	}
	if len(cs) != 23570 {
		t.Fatalf("%d customers in the file, want 23,570", len(cs))
	}
	var days, freq, money []float64
	for _, c := range cs {
		days = append(days, math.Floor(now.Sub(c.last).Hours()/24))
		freq = append(freq, float64(c.n))
		money = append(money, float64(c.cents)/100)
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(days)))
	sort.Float64s(freq)
	sort.Float64s(money)
	q := func(s []float64, k int) float64 { return s[k*len(s)/5-1] }
	wantR, wantF, wantM := map[int]int{}, map[int]int{}, map[int]int{}
	wantSeg, wantStage := map[string]int{}, map[string]int{}
	for _, c := range cs {
		d := math.Floor(now.Sub(c.last).Hours() / 24)
		r, f, m := 1, 1, 1
		for k := 1; k <= 4; k++ {
			if d < q(days, k) {
				r++
			}
			if float64(c.n) > q(freq, k) {
				f++
			}
			if float64(c.cents)/100 > q(money, k) {
				m++
			}
		}
		wantR[r]++
		wantF[f]++
		wantM[m]++
		seg := "hibernating"
		switch {
		case r == 5 && f >= 4:
			seg = "champions"
		case r >= 3 && f >= 4:
			seg = "loyal"
		case r >= 4 && f >= 2:
			seg = "potential_loyalist"
		case r == 5:
			seg = "new_customer"
		case r == 4:
			seg = "promising"
		case r == 3 && f == 3:
			seg = "need_attention"
		case r == 3:
			seg = "about_to_sleep"
		case f == 5:
			seg = "cant_lose"
		case f >= 3:
			seg = "at_risk"
		}
		wantSeg[seg]++
		gap := now.Sub(c.last)
		stage := "new"
		switch {
		case gap >= 365*24*time.Hour:
			stage = "churned"
		case gap >= 180*24*time.Hour:
			stage = "at_risk"
		case c.n >= 4:
			stage = "loyal"
		case c.n >= 2:
			stage = "repeat"
		}
		wantStage[stage]++
	}

	// Through the processor.
	e := open(t, t.TempDir())
	e.now = now
	evs := make([]*portrait.Event, len(lines))
	for i, l := range lines {
		evs[i] = &portrait.Event{MessageID: fmt.Sprintf("cdnow-%05d", i), Type: portrait.EventTrack, Name: "Order Completed", Source: "cdnow",
			UserID: l.cust, Properties: []byte(fmt.Sprintf(`{"revenue":%d.%02d}`, l.cents/100, l.cents%100)), Timestamp: l.date, ReceivedAt: now}
	}
	for i := 0; i < len(evs); i += 10000 {
		if _, err := e.db.Append(context.Background(), evs[i:min(i+10000, len(evs))], nil); err != nil {
			t.Fatal(err)
		}
	}
	last, _ := e.db.LastSeq(context.Background())
	if err := e.proc.CatchUp(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	b, err := traits.ComputeBoundaries(context.Background(), e.db.AllProfiles, now)
	if err != nil {
		t.Fatal(err)
	}
	e.en.SetBoundaries(b)
	if _, err := e.proc.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	gotR, gotF, gotM := map[int]int{}, map[int]int{}, map[int]int{}
	gotSeg, gotStage := map[string]int{}, map[string]int{}
	profiles := 0
	err = e.db.AllProfiles(context.Background(), func(p *portrait.Profile) error {
		profiles++
		gotR[int(p.Traits["rfm_r"].Value.(float64))]++
		gotF[int(p.Traits["rfm_f"].Value.(float64))]++
		gotM[int(p.Traits["rfm_m"].Value.(float64))]++
		gotSeg[p.Traits["rfm_segment"].Value.(string)]++
		gotStage[p.Traits["lifecycle_stage"].Value.(string)]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if profiles != 23570 {
		t.Errorf("%d profiles, want 23,570", profiles)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{{"R", gotR, wantR}, {"F", gotF, wantF}, {"M", gotM, wantM}, {"segments", gotSeg, wantSeg}, {"lifecycle", gotStage, wantStage}} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		} else {
			t.Logf("%s: %v", c.name, c.got)
		}
	}
}
