package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/search"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/tag"
	"github.com/portrait-cdp/portrait/traits"
)

// consoleCustomer is one generated customer, kept to compute the expected
// answers by brute force.
type consoleCustomer struct {
	user, name, email, phone, province, city string
	orders                                   []time.Duration // ago
	amounts                                  []float64
	nps                                      int // -1: no survey
}

// consoleEnv is a server with the whole pipeline behind it: the cleaner,
// identity, the traits and tag enrichers, the segment index and search,
// over a store of generated customers with Chinese names.
type consoleEnv struct {
	db        *sqlite.DB
	proc      *profile.Processor
	segs      *segment.Service
	srv       *httptest.Server
	server    *porthttp.Server // its parts, for tests that wire more
	now       time.Time
	customers []consoleCustomer
	anonymous int
}

var (
	consoleNames = []string{"张三", "李四", "王芳", "王芳", "王芳", "王伟", "刘洋", "陈静", "张伟", "Anna Smith", "赵敏", "周杰", "吴磊", "郑爽", "孙丽"}
	consoleProvs = map[string][]string{"广东省": {"深圳市", "广州市"}, "浙江省": {"杭州市"}, "上海市": {"上海市"}, "四川省": {"成都市"}}
	provOrder    = []string{"广东省", "广东省", "浙江省", "上海市", "四川省"}
	phoneFormats = []string{"138 0013 %04d", "+86 139-0013-%04d", "0086 137 0013 %04d", "150-0013-%04d"}
)

func newConsoleEnv(t *testing.T) *consoleEnv {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	db.KeyHashCost = testKeyCost
	t.Cleanup(func() { db.Close() })
	if err := db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyAdmin, Name: "admin"}, adminKey); err != nil {
		t.Fatal(err)
	}
	e := &consoleEnv{db: db, now: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	db.Now = func() time.Time { return e.now }
	rules := identity.DefaultRules()
	rules.Normalize = clean.Identifier
	proc := profile.NewProcessor(db, rules)
	proc.Now = func() time.Time { return e.now }
	std := clean.DefaultTraitStandardizer()
	proc.Standardize = std.Standardize
	ten, _ := traits.New(traits.DefaultConfig(), nil)
	ts := traits.NewService(db, ten)
	ts.Each, ts.Refresh, ts.Now = db.AllProfiles, proc.Refresh, proc.Now
	gen := tag.NewEnricher()
	gs := tag.NewService(db, gen, ten.Schema)
	gs.Refresh, gs.Count, gs.Now = proc.Refresh, db.CountProfiles, proc.Now
	ts.Changed = gs.Reactivate
	proc.Enrichers = []profile.Enricher{clean.PinyinEnricher{}, ten, gen}
	ix := segment.NewIndex()
	ix.SetKeep(traits.KeepSurveys) // as the app does: NPS from the index
	segs := segment.NewService(ix, db)
	segs.Now, segs.Behaviour = proc.Now, db.SegmentBehaviour
	finder := search.NewIndex(clean.Identifier)
	proc.OnChange = func(c []*portrait.Profile, d []string, applied map[string][]*portrait.Event) {
		finder.OnChange(c, d, applied)
		if err := segs.Apply(ctx, c, d, applied); err != nil {
			t.Error(err)
		}
	}
	e.proc, e.segs = proc, segs
	for _, d := range []tag.Definition{
		{Name: "big_spender", Dimension: traits.DimValue, Expression: "revenue >= 1000"},
		{Name: "promoter", NameZh: "推荐者", NameEn: "Promoter", Dimension: traits.DimFeedback, Expression: `nps_category == "promoter"`},
	} {
		if _, err := gs.Define(ctx, d); err != nil {
			t.Fatal(err)
		}
	}

	s := porthttp.NewServer()
	s.Now = proc.Now
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	s.NormalizeID = clean.Identifier
	s.Traits, s.Tags, s.Segments, s.Search = ts, gs, segs, finder
	s.QualityStore, s.Overview = db, db
	e.srv, e.server = httptest.NewServer(s.Handler()), s
	t.Cleanup(e.srv.Close)

	// 45 customers: names repeat (three 王芳 per round), orders spread
	// over the past year, surveys from every third.
	var evs []*portrait.Event
	seq := 0
	add := func(ev *portrait.Event) {
		seq++
		ev.MessageID = fmt.Sprintf("m%04d", seq)
		if ev.ReceivedAt.IsZero() {
			ev.ReceivedAt = ev.Timestamp
		}
		if ev.Source == "" {
			ev.Source = "web"
		}
		evs = append(evs, ev)
	}
	for i := 0; i < 45; i++ {
		prov := provOrder[i%len(provOrder)]
		c := consoleCustomer{user: fmt.Sprintf("u%02d", i), name: consoleNames[i%len(consoleNames)],
			email: fmt.Sprintf("Customer.%02d@Example.CN", i), phone: fmt.Sprintf(phoneFormats[i%len(phoneFormats)], i),
			province: prov, city: consoleProvs[prov][i%len(consoleProvs[prov])], nps: -1}
		first := e.now.Add(-time.Duration(300-i*5) * 24 * time.Hour)
		traitsJSON, _ := json.Marshal(map[string]any{"name": c.name, "email": c.email, "phone": c.phone, "province": c.province, "city": c.city})
		add(&portrait.Event{Type: portrait.EventIdentify, UserID: c.user, Traits: traitsJSON, Timestamp: first})
		for k := 0; k < i%4; k++ {
			ago := time.Duration(250-i*5-k*20) * 24 * time.Hour
			amount := float64(100 * (i + 1) * (k + 1))
			c.orders, c.amounts = append(c.orders, ago), append(c.amounts, amount)
			add(&portrait.Event{Type: portrait.EventTrack, Name: "Order Completed", UserID: c.user, Timestamp: e.now.Add(-ago),
				Properties: json.RawMessage(fmt.Sprintf(`{"revenue":%v}`, amount))})
		}
		if i%3 == 0 {
			c.nps = i % 11
			add(&portrait.Event{Type: portrait.EventTrack, Name: "Survey Submitted", UserID: c.user, Timestamp: e.now.Add(-time.Duration(i) * 24 * time.Hour),
				Properties: json.RawMessage(fmt.Sprintf(`{"nps":%d,"csat":%d}`, c.nps, 1+i%5))})
		}
		e.customers = append(e.customers, c)
	}
	for i := 0; i < 6; i++ { // visitors never identified
		add(&portrait.Event{Type: portrait.EventPage, AnonymousID: fmt.Sprintf("anon-%d", i), Timestamp: e.now.Add(-time.Duration(i) * time.Hour), Source: "app"})
		e.anonymous++
	}
	if _, err := db.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	last, _ := db.LastSeq(ctx)
	if err := proc.CatchUp(ctx, last); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *consoleEnv) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("GET %s: %d, not JSON: %s", path, res.StatusCode, raw)
	}
	return res.StatusCode, out
}

func (e *consoleEnv) createSegment(t *testing.T, name, expr string) string {
	t.Helper()
	st, err := e.segs.Create(context.Background(), &segment.Definition{Name: name, Expression: expr})
	if err != nil {
		t.Fatal(err)
	}
	return st.ID
}

func errMessage(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func TestBreakdownOverHTTP(t *testing.T) {
	e := newConsoleEnv(t)
	wantProv := map[string]int{}
	wantRevenue := map[string]float64{}
	buyers := 0
	for _, c := range e.customers {
		wantProv[c.province]++
		for _, a := range c.amounts {
			wantRevenue[c.province] += a
		}
		if len(c.orders) > 0 {
			buyers++
		}
	}
	seg := e.createSegment(t, "guangdong", `traits.province == "广东省"`)

	code, out := e.get(t, "/v1/breakdown?by=region&metric=revenue")
	if code != 200 {
		t.Fatalf("by=region: %d %v", code, out)
	}
	total := len(e.customers) + e.anonymous
	if out["total"] != float64(total) || out["by"] != "region" || out["segment"] != nil || out["metric"] != "revenue" || out["other"] != nil {
		t.Fatalf("header: %v", out)
	}
	if m := out["missing"].(map[string]any); m["count"] != float64(e.anonymous) {
		t.Errorf("missing %v, want the %d anonymous visitors", m, e.anonymous)
	}
	groups := out["groups"].([]any)
	if len(groups) != len(wantProv) {
		t.Fatalf("groups %v, want %v", groups, wantProv)
	}
	for _, g := range groups {
		g := g.(map[string]any)
		k := g["key"].(string)
		if g["count"] != float64(wantProv[k]) || g["sum"] != wantRevenue[k] || g["label"] != k || g["from"] != nil {
			t.Errorf("%s: %v, want count %d revenue %v", k, g, wantProv[k], wantRevenue[k])
		}
	}

	// within a segment: only Guangdong's cities, all of them
	code, out = e.get(t, "/v1/breakdown?by=region:city&segment="+seg)
	if code != 200 || out["total"] != float64(wantProv["广东省"]) || out["segment"] != seg {
		t.Fatalf("in segment: %d %v", code, out)
	}
	for _, g := range out["groups"].([]any) {
		if k := g.(map[string]any)["key"]; k != "深圳市" && k != "广州市" {
			t.Errorf("a city outside the segment: %v", k)
		}
		if g.(map[string]any)["sum"] != nil {
			t.Errorf("a sum without a metric: %v", g)
		}
	}

	// top 2 leaves the rest in other
	_, out = e.get(t, "/v1/breakdown?by=trait:city&top=2")
	if len(out["groups"].([]any)) != 2 || out["other"] == nil {
		t.Errorf("top=2: %v", out)
	}
	// buckets of revenue, identified, lifecycle, tags of a dimension
	_, out = e.get(t, "/v1/breakdown?by=bucket:revenue:1000")
	n := 0.0
	for _, g := range out["groups"].([]any) {
		g := g.(map[string]any)
		if g["from"] == nil || g["to"].(float64)-g["from"].(float64) != 1000 {
			t.Errorf("bucket %v", g)
		}
		n += g["count"].(float64)
	}
	if n != float64(total) || buyers == 0 {
		t.Errorf("revenue buckets hold %v, want every profile (%d; revenue is 0 before a purchase)", n, total)
	}
	_, out = e.get(t, "/v1/breakdown?by=identified")
	for _, g := range out["groups"].([]any) {
		g := g.(map[string]any)
		if want := map[string]int{"identified": len(e.customers), "anonymous": e.anonymous}[g["key"].(string)]; g["count"] != float64(want) {
			t.Errorf("identified: %v, want %d", g, want)
		}
	}
	_, out = e.get(t, "/v1/breakdown?by=lifecycle")
	stages := 0.0
	for _, g := range out["groups"].([]any) {
		stages += g.(map[string]any)["count"].(float64)
	}
	if stages != float64(total) {
		t.Errorf("lifecycle groups hold %v, want %d", stages, total)
	}
	_, out = e.get(t, "/v1/breakdown?by=tag:feedback")
	for _, g := range out["groups"].([]any) {
		if g.(map[string]any)["key"] != "promoter" {
			t.Errorf("tag:feedback gave %v", g)
		}
	}

	for _, c := range []struct{ q, want string }{
		{"by=colour", "by must be"},
		{"by=bucket:revenue:0", "positive"},
		{"by=bucket:revenue:0.0001", "at most 1000"},
		{"by=tag:mood", "not one of"},
		{"by=region&top=0", "top must be"},
		{"by=region&top=x", "non-negative integer"},
	} {
		if code, out := e.get(t, "/v1/breakdown?"+c.q); code != 400 || !strings.Contains(errMessage(out), c.want) {
			t.Errorf("%s: %d %v, want 400 mentioning %q", c.q, code, out, c.want)
		}
	}
	if code, out := e.get(t, "/v1/breakdown?by=region&segment=seg_nope"); code != 404 {
		t.Errorf("unknown segment: %d %v", code, out)
	}
	// the null case: a trait nobody holds is all missing, no groups
	_, out = e.get(t, "/v1/breakdown?by=trait:shoe_size")
	if len(out["groups"].([]any)) != 0 || out["missing"].(map[string]any)["count"] != float64(total) {
		t.Errorf("nobody: %v", out)
	}
}

func TestProfileListOverHTTP(t *testing.T) {
	e := newConsoleEnv(t)
	want := map[string]float64{}
	for _, c := range e.customers {
		sum := 0.0
		for _, a := range c.amounts {
			sum += a
		}
		if sum > 0 {
			want[c.user] = sum
		}
	}
	// every big spender, by revenue descending, three per page
	var got []float64
	cursor := ""
	pages := 0
	for {
		q := "/v1/profiles?tag=big_spender&sort=revenue&order=desc&limit=3"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		code, out := e.get(t, q)
		if code != 200 {
			t.Fatalf("%s: %d %v", q, code, out)
		}
		pages++
		for _, p := range out["profiles"].([]any) {
			p := p.(map[string]any)
			tr := p["traits"].(map[string]any)
			got = append(got, tr["revenue"].(float64))
			if p["name"] == "" || p["profile_id"] == "" || tr["city"] == nil || !contains(p["tags"].([]any), "big_spender") {
				t.Errorf("entry %v", p)
			}
		}
		if out["next_cursor"] == nil {
			break
		}
		cursor = out["next_cursor"].(string)
		if pages > 20 {
			t.Fatal("the cursor never ends")
		}
	}
	var wantDesc []float64
	for _, v := range want {
		if v >= 1000 {
			wantDesc = append(wantDesc, v)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(wantDesc)))
	if fmt.Sprint(got) != fmt.Sprint(wantDesc) {
		t.Errorf("big spenders by revenue: %v, want %v", got, wantDesc)
	}
	seg := e.createSegment(t, "zhejiang", `traits.province == "浙江省"`)
	code, out := e.get(t, "/v1/profiles?segment="+seg+"&limit=500")
	if code != 200 || out["total"] != 9.0 || len(out["profiles"].([]any)) != 9 || out["next_cursor"] != nil {
		t.Errorf("segment list: %d total %v, %d profiles", code, out["total"], len(out["profiles"].([]any)))
	}
	for _, c := range []struct{ q, want string }{
		{"order=up", "order must be"}, {"limit=0", "limit must be"}, {"cursor=not-ours!", "cursor"},
		{"sort=revenue&cursor=" + cursor, "another list"},
	} {
		if code, out := e.get(t, "/v1/profiles?"+c.q); code != 400 || !strings.Contains(errMessage(out), c.want) {
			t.Errorf("%s: %d %v, want 400 mentioning %q", c.q, code, out, c.want)
		}
	}
	// a tag nobody carries is an empty list, not an error
	if code, out := e.get(t, "/v1/profiles?tag=unicorn"); code != 200 || out["total"] != 0.0 || len(out["profiles"].([]any)) != 0 {
		t.Errorf("no one: %d %v", code, out)
	}
}

func contains(l []any, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestLifecycleOverHTTP(t *testing.T) {
	e := newConsoleEnv(t)
	code, out := e.get(t, "/v1/lifecycle/distribution?interval=month&from=2025-12-01&to=2026-12-05")
	if code != 200 || out["interval"] != "month" {
		t.Fatalf("distribution: %d %v", code, out)
	}
	series := out["series"].([]any)
	if len(series) != 13 || series[0].(map[string]any)["period"] != "2025-12-01" || series[12].(map[string]any)["period"] != "2026-12-01" {
		t.Fatalf("periods: %v", series)
	}
	// the last period is as of now: its counts are the current stages
	_, bd := e.get(t, "/v1/breakdown?by=lifecycle&top=20")
	current := map[string]float64{}
	for _, g := range bd["groups"].([]any) {
		current[g.(map[string]any)["key"].(string)] = g.(map[string]any)["count"].(float64)
	}
	last := series[12].(map[string]any)["counts"].(map[string]any)
	if len(last) != len(current) {
		t.Errorf("last month %v, current stages %v", last, current)
	}
	for k, v := range current {
		if last[k] != v {
			t.Errorf("stage %s: %v in the last month, %v now", k, last[k], v)
		}
	}
	// a month before the first customer counts no one
	if c := series[0].(map[string]any)["counts"].(map[string]any); len(c) != 0 {
		t.Errorf("before anyone: %v", c)
	}

	// flows over the whole year: every customer entered once
	code, out = e.get(t, "/v1/lifecycle/flows?from=2025-01-01&to=2026-12-05")
	if code != 200 {
		t.Fatalf("flows: %d %v", code, out)
	}
	entered := 0.0
	for _, f := range out["flows"].([]any) {
		f := f.(map[string]any)
		if f["from"] == nil {
			entered += f["count"].(float64)
		}
		if f["from"] == f["to"] {
			t.Errorf("a flow to the same stage: %v", f)
		}
	}
	if entered != float64(len(e.customers)+e.anonymous) {
		t.Errorf("%v entered, want %d", entered, len(e.customers)+e.anonymous)
	}
	// within a segment nobody is in: nothing
	seg := e.createSegment(t, "nobody", `traits.province == "西藏自治区"`)
	_, out = e.get(t, "/v1/lifecycle/flows?from=2025-01-01&segment="+seg)
	if len(out["flows"].([]any)) != 0 {
		t.Errorf("empty segment flows: %v", out)
	}
	for _, q := range []string{"/v1/lifecycle/distribution?interval=year", "/v1/lifecycle/distribution?from=2026-13-01",
		"/v1/lifecycle/distribution?interval=day&from=1990-01-01", "/v1/lifecycle/flows?from=2026-02-01&to=2026-01-01"} {
		if code, out := e.get(t, q); code != 400 || errMessage(out) == "" {
			t.Errorf("%s: %d %v", q, code, out)
		}
	}
}

func TestNPSBySegmentOverHTTP(t *testing.T) {
	e := newConsoleEnv(t)
	gd := e.createSegment(t, "guangdong", `traits.province == "广东省"`)
	sh := e.createSegment(t, "shanghai", `traits.province == "上海市"`)
	want := map[string][3]int{} // province → promoters, passives, detractors
	for _, c := range e.customers {
		if c.nps < 0 {
			continue
		}
		w := want[c.province]
		switch traits.NPSCategory(c.nps) {
		case traits.Promoter:
			w[0]++
		case traits.Passive:
			w[1]++
		default:
			w[2]++
		}
		want[c.province] = w
	}
	for _, q := range []string{"by=segment:" + gd + "&by=segment:" + sh + "&interval=all", "segments=" + gd + "," + sh + "&interval=all"} {
		code, out := e.get(t, "/v1/analytics/nps?"+q)
		if code != 200 || out["by"] != "segment" || len(out["segments"].([]any)) != 2 {
			t.Fatalf("%s: %d %v", q, code, out)
		}
		rows := out["rows"].([]any)
		if len(rows) != 2 {
			t.Fatalf("%s: rows %v", q, rows)
		}
		for _, r := range rows {
			r := r.(map[string]any)
			prov := map[string]string{gd: "广东省", sh: "上海市"}[r["group"].(string)]
			w := want[prov]
			if r["promoters"] != float64(w[0]) || r["passives"] != float64(w[1]) || r["detractors"] != float64(w[2]) {
				t.Errorf("%s: %v, want %v", prov, r, w)
			}
		}
	}
	code, out := e.get(t, "/v1/analytics/nps?by=segment:"+gd+"&interval=month")
	if code != 200 || out["interval"] != "month" || len(out["rows"].([]any)) == 0 {
		t.Errorf("by month: %d %v", code, out)
	}
	for _, r := range out["rows"].([]any) {
		if p := r.(map[string]any)["period"].(string); len(p) != 7 {
			t.Errorf("period %q is not a month", p)
		}
	}
	for _, c := range []struct {
		q    string
		code int
	}{{"by=segment:", 400}, {"by=segment:seg_nope", 404}, {"by=segment:" + gd + "&by=tag", 400}, {"by=tag&segments=" + gd, 400}, {"segments=,", 400}} {
		if code, out := e.get(t, "/v1/analytics/nps?"+c.q); code != c.code {
			t.Errorf("%s: %d %v, want %d", c.q, code, out, c.code)
		}
	}
}

func TestSearchOverHTTP(t *testing.T) {
	e := newConsoleEnv(t)
	byName := map[string]int{}
	for _, c := range e.customers {
		byName[c.name]++
	}
	results := func(q string) []map[string]any {
		t.Helper()
		code, out := e.get(t, "/v1/search?limit=50&q="+url.QueryEscape(q))
		if code != 200 || out["query"] != q || out["took_ms"] == nil {
			t.Fatalf("q=%s: %d %v", q, code, out)
		}
		var rs []map[string]any
		for _, r := range out["results"].([]any) {
			rs = append(rs, r.(map[string]any))
		}
		return rs
	}
	for _, c := range []struct {
		q, name, field string
	}{
		{"zhangsan", "张三", "name_pinyin"}, {"zhang san", "张三", "name_pinyin"}, {"张三", "张三", "name"},
		{"wangfang", "王芳", "name_pinyin"}, {"王芳", "王芳", "name"},
	} {
		rs := results(c.q)
		if len(rs) != byName[c.name] {
			t.Errorf("%s: %d results, want the %d %s", c.q, len(rs), byName[c.name], c.name)
		}
		for _, r := range rs {
			m := r["matched"].(map[string]any)
			if r["name"] != c.name || m["field"] != c.field || len(r["identifiers"].([]any)) == 0 || r["traits"].(map[string]any)["city"] == nil {
				t.Errorf("%s: %v", c.q, r)
			}
		}
	}
	// customer 5's phone was sent as "+86 139-0013-0005"; any format finds it
	c5 := e.customers[5]
	for _, q := range []string{"13900130005", "139 0013 0005", "+86 139-0013-0005", "0086 13900130005"} {
		rs := results(q)
		if len(rs) != 1 || rs[0]["name"] != c5.name || rs[0]["matched"].(map[string]any)["field"] != "phone" {
			t.Errorf("%s: %v", q, rs)
		}
	}
	if rs := results(strings.ToUpper(c5.email)); len(rs) != 1 || rs[0]["matched"].(map[string]any)["field"] != "email" {
		t.Errorf("email in upper case: %v", rs)
	}
	if rs := results(c5.user); len(rs) != 1 || rs[0]["matched"].(map[string]any)["field"] != "user_id" {
		t.Errorf("user id: %v", rs)
	}
	if rs := results("anon-3"); len(rs) != 1 || rs[0]["matched"].(map[string]any)["field"] != "anonymous_id" {
		t.Errorf("anonymous id: %v", rs)
	}
	// the null case
	for _, q := range []string{"欧阳娜娜", "qqqq", "18612345678", "nobody@example.org"} {
		if rs := results(q); len(rs) != 0 {
			t.Errorf("%s found %v", q, rs)
		}
	}
	for _, q := range []string{"q=", "q=%20", "q=x&limit=0", "q=x&limit=101", "q=" + strings.Repeat("长", 201)} {
		if code, out := e.get(t, "/v1/search?"+q); code != 400 || errMessage(out) == "" {
			t.Errorf("%s: %d %v", q, code, out)
		}
	}
}

func TestOverviewOverHTTP(t *testing.T) {
	e := newConsoleEnv(t)
	ctx := context.Background()
	for _, name := range []string{"web", "crm"} {
		if err := e.db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyWrite, Name: name}, "wk-"+name+"-secret"); err != nil {
			t.Fatal(err)
		}
	}
	// now: four events two minutes ago, one of them tying visitor anon-5 to
	// customer u01 (a merge), and a rejected record
	recent := e.now.Add(-2 * time.Minute)
	var evs []*portrait.Event
	for i := 0; i < 4; i++ {
		ev := &portrait.Event{MessageID: fmt.Sprintf("r%d", i), Type: portrait.EventTrack, Name: "Product Viewed", Source: "web",
			UserID: "u01", Timestamp: recent, ReceivedAt: recent}
		if i == 0 {
			ev.AnonymousID = "anon-5"
		}
		evs = append(evs, ev)
	}
	rej := []*portrait.Rejected{{Source: "web", Index: 0, Reason: "userId or anonymousId is required", Raw: []byte(`{}`), ReceivedAt: recent}}
	if _, err := e.db.Append(ctx, evs, rej); err != nil {
		t.Fatal(err)
	}
	last, _ := e.db.LastSeq(ctx)
	if err := e.proc.CatchUp(ctx, last); err != nil {
		t.Fatal(err)
	}
	e.createSegment(t, "guangdong", `traits.province == "广东省"`)

	code, out := e.get(t, "/v1/overview")
	if code != 200 {
		t.Fatalf("overview: %d %v", code, out)
	}
	profiles := float64(len(e.customers) + e.anonymous - 1) // anon-5 merged into u01
	if out["profiles"] != profiles || out["identified"] != float64(len(e.customers)) || out["identified_share"] != float64(len(e.customers))/profiles {
		t.Errorf("profiles %v identified %v share %v", out["profiles"], out["identified"], out["identified_share"])
	}
	events, _ := e.db.CountEvents(ctx)
	if out["events_total"] != float64(events) || out["segments"] != 1.0 {
		t.Errorf("events_total %v (want %d), segments %v", out["events_total"], events, out["segments"])
	}
	epm := out["events_per_minute"].([]any)
	if len(epm) != 60 {
		t.Fatalf("%d minutes", len(epm))
	}
	lastMin := epm[59].(map[string]any)
	if lastMin["minute"] != e.now.Truncate(time.Minute).Format(time.RFC3339) {
		t.Errorf("the last minute is %v", lastMin["minute"])
	}
	if m := epm[57].(map[string]any); m["count"] != 4.0 || m["minute"] != recent.Truncate(time.Minute).Format(time.RFC3339) {
		t.Errorf("two minutes ago: %v", m)
	}
	srcs := map[string]map[string]any{}
	for _, x := range out["sources"].([]any) {
		srcs[x.(map[string]any)["source"].(string)] = x.(map[string]any)
	}
	if c := srcs["crm"]; c == nil || c["events"] != 0.0 || c["last_event_at"] != nil || c["rejection_rate"] != 0.0 {
		t.Errorf("a write key that sent nothing: %v", c)
	}
	web := srcs["web"]
	if web == nil || web["rejected"] != 1.0 || web["last_event_at"] == nil || web["rejection_rate"] != 1/(web["events"].(float64)+1) {
		t.Errorf("web: %v", web)
	}
	if q, ok := out["quality_score"].(float64); !ok || q <= 0 || q >= 1 {
		t.Errorf("quality score %v: one rejection in %v records", out["quality_score"], events+1)
	}
	merges := out["recent_merges"].([]any)
	if len(merges) != 1 || merges[0].(map[string]any)["profile_id"] == "" || merges[0].(map[string]any)["at"] == nil {
		t.Errorf("merges %v", merges)
	}
	// The reason as a code the console says in its language, beside the
	// English sentence (issue 13).
	if m := merges[0].(map[string]any); m["reason_code"] != "shared_identifier" || m["reason_params"].(map[string]any)["type"] == "" || m["reason"] == "" {
		t.Errorf("merge reason code %v", m)
	}
	var stages float64
	for i, st := range out["lifecycle"].([]any) {
		st := st.(map[string]any)
		if i < len(traits.Stages) && st["stage"] != traits.Stages[i] {
			t.Errorf("stage %d is %v", i, st["stage"])
		}
		stages += st["count"].(float64)
	}
	if stages != profiles {
		t.Errorf("lifecycle counts %v profiles, want %v", stages, profiles)
	}
}

// The null case: an empty store answers zeros and no score, not errors.
func TestOverviewOfNothing(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	db.KeyHashCost = testKeyCost
	defer db.Close()
	if err := db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyAdmin, Name: "admin"}, adminKey); err != nil {
		t.Fatal(err)
	}
	s := porthttp.NewServer()
	s.Events, s.Quarantine, s.Keys, s.Profiles, s.Overview = db, db, db, db, db
	s.Segments = segment.NewService(segment.NewIndex(), db)
	e := &consoleEnv{srv: httptest.NewServer(s.Handler())}
	defer e.srv.Close()
	code, out := e.get(t, "/v1/overview")
	if code != 200 || out["profiles"] != 0.0 || out["identified_share"] != 0.0 || out["quality_score"] != nil || len(out["events_per_minute"].([]any)) != 60 ||
		len(out["sources"].([]any)) != 0 || len(out["recent_merges"].([]any)) != 0 {
		t.Errorf("empty: %d %v", code, out)
	}
}
