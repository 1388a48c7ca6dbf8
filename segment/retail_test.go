package segment_test

import (
	"compress/gzip"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

// retailCustomer is one Online Retail customer, summarised plainly from the
// invoice lines: the profile the index is loaded with, and the record the
// independent computations in the tests read.
type retailCustomer struct {
	id        string
	country   string
	invoices  float64
	lines     float64
	revenue   float64
	avgPrice  float64
	month     string // first purchase month, YYYY-MM
	cancelled bool
	items     map[string]bool // stock codes among the most bought (retailItems)
}

// retailItems is how many of the stock codes bought by the most customers
// become tags ("item:<code>").
const retailItems = 100

var retail struct {
	once      sync.Once
	customers []*retailCustomer
	err       error
	path      string
}

// sharedData finds ../shared/data by walking up from the package directory
// (the approach of analytics/internal/shareddata, which segment cannot
// import), or PORTRAIT_SHARED; the test skips when it is absent.
func sharedData(t testing.TB, rel string) string {
	t.Helper()
	var dirs []string
	if env := os.Getenv("PORTRAIT_SHARED"); env != "" {
		dirs = append(dirs, filepath.Join(env, "data"), env)
	}
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		dirs = append(dirs, filepath.Join(d, "shared", "data"))
		if filepath.Dir(d) == d {
			break
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, filepath.FromSlash(rel))
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("shared data %s not found (set PORTRAIT_SHARED or place the checkout next to shared/data); skipping", rel)
	return ""
}

// retailCustomers reads the Online Retail file once per test binary.
func retailCustomers(t testing.TB) []*retailCustomer {
	t.Helper()
	path := sharedData(t, "online_retail/online_retail.csv.gz")
	retail.once.Do(func() { retail.customers, retail.err = readRetail(path) })
	if retail.err != nil {
		t.Fatal(retail.err)
	}
	return retail.customers
}

func readRetail(path string) ([]*retailCustomer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(gz)
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil {
		return nil, err
	}
	type acc struct {
		c        *retailCustomer
		invoices map[string]bool
		codes    map[string]bool
		priceSum float64
	}
	by := map[string]*acc{}
	var order []string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		inv, code, qtyS, date, priceS, cust, country := rec[0], rec[1], rec[3], rec[4], rec[5], rec[6], rec[7]
		if cust == "" {
			continue
		}
		a := by[cust]
		if a == nil {
			// a handful of customers appear under two countries: the first wins
			a = &acc{c: &retailCustomer{id: "c" + cust, country: country, month: date[:7]}, invoices: map[string]bool{}, codes: map[string]bool{}}
			by[cust] = a
			order = append(order, cust)
		}
		if strings.HasPrefix(inv, "C") {
			a.c.cancelled = true
			continue
		}
		qty, _ := strconv.ParseFloat(qtyS, 64)
		price, _ := strconv.ParseFloat(priceS, 64)
		a.invoices[inv] = true
		a.codes[code] = true
		a.c.lines++
		a.c.revenue += qty * price
		a.priceSum += price
		if date[:7] < a.c.month {
			a.c.month = date[:7]
		}
	}
	buyers := map[string]int{}
	for _, a := range by {
		for code := range a.codes {
			buyers[code]++
		}
	}
	codes := make([]string, 0, len(buyers))
	for c := range buyers {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		return buyers[codes[i]] > buyers[codes[j]] || buyers[codes[i]] == buyers[codes[j]] && codes[i] < codes[j]
	})
	top := map[string]bool{}
	for _, c := range codes[:retailItems] {
		top[c] = true
	}
	out := make([]*retailCustomer, 0, len(order))
	for _, id := range order {
		a := by[id]
		a.c.invoices = float64(len(a.invoices))
		if a.c.lines > 0 {
			a.c.avgPrice = a.priceSum / a.c.lines
		}
		a.c.items = map[string]bool{}
		for code := range a.codes {
			if top[code] {
				a.c.items[code] = true
			}
		}
		out = append(out, a.c)
	}
	return out, nil
}

// numeric traits of a retail profile, by name; customers who only
// cancelled hold none of them.
func (c *retailCustomer) numbers() map[string]float64 {
	if c.lines == 0 {
		return nil
	}
	return map[string]float64{"invoices": c.invoices, "lines": c.lines, "revenue": c.revenue, "avg_price": c.avgPrice}
}

func (c *retailCustomer) profile() *portrait.Profile {
	p := &portrait.Profile{ID: c.id, Traits: map[string]portrait.Trait{
		"country":     {Value: c.country},
		"first_month": {Value: c.month},
		"cancelled":   {Value: c.cancelled},
	}}
	for k, v := range c.numbers() {
		p.Traits[k] = portrait.Trait{Value: v}
	}
	codes := make([]string, 0, len(c.items))
	for code := range c.items {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	for _, code := range codes {
		p.Tags = append(p.Tags, portrait.ProfileTag{Name: "item:" + code})
	}
	return p
}

// retailIndex loads every customer into a fresh index.
func retailIndex(t testing.TB) (*segment.Index, []*retailCustomer) {
	cs := retailCustomers(t)
	ix := segment.NewIndex()
	for _, c := range cs {
		ix.Upsert(c.profile(), nil)
	}
	return ix, cs
}
