package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/bizmap"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/journey"
	"github.com/portrait-cdp/portrait/needs"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/traits"
)

// The map over HTTP, from events: three customers of Shanghai and one of
// Beijing on known paths, through the real enrichers and segment index.
func TestMapOverHTTP(t *testing.T) {
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
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	ten, _ := traits.New(traits.DefaultConfig(), nil)
	jen, err := journey.New(journey.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	nen, err := needs.New(needs.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	proc := profile.NewProcessor(db, identity.DefaultRules())
	proc.Now = func() time.Time { return now }
	proc.Enrichers = []profile.Enricher{ten, jen, nen}
	svc := segment.NewService(segment.NewIndex(), db)
	svc.Now, svc.Behaviour = proc.Now, db.SegmentBehaviour
	proc.OnChange = func(c []*portrait.Profile, d []string, applied map[string][]*portrait.Event) {
		if err := svc.Apply(ctx, c, d, applied); err != nil {
			t.Error(err)
		}
	}
	m, err := bizmap.New(svc.Index, svc, journey.DefaultConfig(), needs.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Now = proc.Now
	s := porthttp.NewServer()
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	s.Segments, s.Map = svc, m
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	seq := 0
	var evs []*portrait.Event
	ev := func(user, typ, name string, ago time.Duration, props string) {
		seq++
		e := &portrait.Event{MessageID: fmt.Sprintf("m%d", seq), Type: typ, Name: name, UserID: user, Timestamp: now.Add(-ago), ReceivedAt: now}
		if typ == portrait.EventIdentify {
			e.Traits = json.RawMessage(props)
		} else if props != "" {
			e.Properties = json.RawMessage(props)
		}
		evs = append(evs, e)
	}
	const day = 24 * time.Hour
	for _, u := range []string{"a", "b", "c"} {
		ev(u, portrait.EventIdentify, "", 60*day, `{"city":"上海市"}`)
		ev(u, portrait.EventTrack, "Consultation Requested", 50*day, `{"channel":"wechat"}`)
		ev(u, portrait.EventTrack, "Survey Submitted", 49*day, `{"nps":10,"needs":"理财"}`)
	}
	// a and b buy, 4 and 6 days after consulting; a complains
	ev("a", portrait.EventTrack, "Order Completed", 46*day, `{"revenue":100}`)
	ev("b", portrait.EventTrack, "Order Completed", 44*day, `{"revenue":300}`)
	ev("a", portrait.EventTrack, "Complaint Submitted", 40*day, `{"text":"快递太慢，物流一直不更新"}`)
	ev("a", portrait.EventTrack, "Survey Submitted", 39*day, `{"csat":2}`)
	ev("d", portrait.EventIdentify, "", 60*day, `{"city":"北京市"}`)
	ev("d", portrait.EventTrack, "Order Completed", 10*day, `{"revenue":50}`)
	if _, err := db.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := proc.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	call := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewBufferString(body))
		req.Header.Set("Authorization", "Bearer "+adminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	seg, err := svc.Create(ctx, &segment.Definition{Name: "上海客户", Expression: `traits.city == "上海市"`})
	if err != nil {
		t.Fatal(err)
	}
	code, body := call("GET", "/v1/map?segments="+seg.ID+",all&lang=en", "")
	if code != http.StatusOK {
		t.Fatalf("map: %d %s", code, body)
	}
	var got struct {
		Stages []string `json:"stages"`
		Rows   []struct {
			Segment string           `json:"segment"`
			Cells   []map[string]any `json:"cells"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Stages) != "[consult purchase after_sales]" || len(got.Rows) != 2 || got.Rows[0].Segment != seg.ID {
		t.Fatalf("map: %s", body)
	}
	// every Interface field is there
	for _, f := range []string{"stage", "customers", "share", "revenue", "clv", "nps", "csat", "conversion", "needs", "pain_points",
		"churn_probability", "expected_purchases_90d", "actions"} {
		if _, ok := got.Rows[0].Cells[0][f]; !ok {
			t.Errorf("cell has no %s: %v", f, got.Rows[0].Cells[0])
		}
	}
	consult, purchase, after := got.Rows[0].Cells[0], got.Rows[0].Cells[1], got.Rows[0].Cells[2]
	check := func(what string, v, want any) {
		t.Helper()
		if fmt.Sprint(v) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, v, want)
		}
	}
	check("consult customers", consult["customers"], 3)
	check("consult conversion", consult["conversion"], 0.6667)
	check("consult median days to purchase", consult["median_days_to_next"], 5)
	check("consult nps", consult["nps"], 100)
	check("consult top need", consult["needs"].([]any)[0].(map[string]any)["key"], "wealth_management")
	check("consult channel", consult["channels"].([]any)[0].(map[string]any)["key"], "wechat")
	check("purchase customers", purchase["customers"], 2)
	check("purchase revenue", purchase["revenue"], 400)
	check("purchase conversion", purchase["conversion"], 0.5)
	check("after-sales customers", after["customers"], 1)
	check("after-sales csat", after["csat"], 2)
	check("after-sales conversion", after["conversion"], nil)
	check("after-sales pain point", after["pain_points"].([]any)[0].(map[string]any)["key"], "delivery")
	check("consult pain points", len(consult["pain_points"].([]any)), 2) // a consulted too: delivery and low_satisfaction
	var rules []string
	for _, a := range after["actions"].([]any) {
		rules = append(rules, a.(map[string]any)["rule"].(string))
	}
	check("after-sales actions", rules, []string{"service_recovery"}) // fix_pain_point wants 3 customers
	check("all purchase customers", got.Rows[1].Cells[1]["customers"], 3)

	// drill down: members, and the cell saved as a segment
	code, body = call("GET", "/v1/map/members?segment="+seg.ID+"&stage=purchase", "")
	var mem struct {
		Total    int      `json:"total"`
		Profiles []string `json:"profiles"`
	}
	if json.Unmarshal(body, &mem); code != http.StatusOK || mem.Total != 2 || len(mem.Profiles) != 2 {
		t.Errorf("members: %d %s", code, body)
	}
	code, body = call("POST", "/v1/map/segments", `{"segment":"`+seg.ID+`","stage":"purchase","name":"上海·购买"}`)
	var cs struct {
		Size       int    `json:"size"`
		Expression string `json:"expression"`
	}
	if json.Unmarshal(body, &cs); code != http.StatusCreated || cs.Size != 2 {
		t.Errorf("cell as a segment: %d %s", code, body)
	}
	// export
	code, body = call("GET", "/v1/map/export?format=xlsx&segments="+seg.ID+"&lang=zh", "")
	if code != http.StatusOK {
		t.Fatalf("export: %d %s", code, body)
	}
	f, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := f.GetRows("经营地图")
	if len(rows) != 2 || rows[1][0] != "上海客户" || rows[1][2] != "3" {
		t.Errorf("export grid: %v", rows)
	}
	// invalid input
	for path, want := range map[string]int{
		"/v1/map?stages=nope":                       http.StatusBadRequest,
		"/v1/map?segments=nope":                     http.StatusNotFound,
		"/v1/map?top=0":                             http.StatusBadRequest,
		"/v1/map/export?format=pdf":                 http.StatusBadRequest,
		"/v1/map/members?segment=all":               http.StatusBadRequest,
		"/v1/map/members?segment=all&stage=x":       http.StatusBadRequest,
		"/v1/map/members?segment=all&stage=consult": http.StatusOK,
	} {
		if code, body := call("GET", path, ""); code != want {
			t.Errorf("%s: %d %s, want %d", path, code, body, want)
		}
	}
	if code, _ := call("POST", "/v1/map/segments", `{"segment":"all"}`); code != http.StatusBadRequest {
		t.Errorf("cell without a stage: %d", code)
	}
}
