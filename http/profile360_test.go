package http_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/linkage"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
)

const appKey = "test-app-write-key"

func addAppKey(t *testing.T) func(*porthttp.Server, *sqlite.DB) {
	return func(_ *porthttp.Server, db *sqlite.DB) {
		if err := db.CreateKey(context.Background(), &portrait.Key{Kind: portrait.KeyWrite, Name: "app"}, appKey); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *server) postAs(t *testing.T, key, path, body string) resp {
	t.Helper()
	return s.do(t, http.MethodPost, path, []byte(body), map[string]string{"Authorization": "Basic " + basic(key)})
}

func basic(key string) string {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(key, "")
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// The timeline filters on the server, and pages through filtered events even
// when the matches lie behind more non-matching events than one read batch.
func TestProfileEventsFiltered(t *testing.T) {
	s := start(t, addAppKey(t))
	if r := s.post(t, "/v1/identify", `{"userId":"u-9","messageId":"id-1","timestamp":"2026-03-01T08:00:00Z","traits":{"name":"王芳"}}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	// Three orders from web, one from app, one other track from web; all
	// older than the 700 page views that follow.
	for i, src := range []string{"web", "app", "web", "web"} {
		key := writeKey
		if src == "app" {
			key = appKey
		}
		body := fmt.Sprintf(`{"userId":"u-9","event":"Order Completed","messageId":"o-%d","timestamp":"2026-03-01T09:0%d:00Z"}`, i, i)
		if r := s.postAs(t, key, "/v1/track", body); r.status != 200 {
			t.Fatal(r.raw)
		}
	}
	s.post(t, "/v1/track", `{"userId":"u-9","event":"Cart Viewed","messageId":"c-1","timestamp":"2026-03-01T09:30:00Z"}`)
	for b := 0; b < 7; b++ {
		var parts []string
		for i := 0; i < 100; i++ {
			parts = append(parts, fmt.Sprintf(`{"type":"page","userId":"u-9","name":"Home","messageId":"p-%d-%d","timestamp":"2026-03-02T10:%02d:%02dZ"}`, b, i, b, i%60))
		}
		if r := s.post(t, "/v1/batch", `{"batch":[`+strings.Join(parts, ",")+`]}`); r.status != 200 {
			t.Fatal(r.raw)
		}
	}
	s.settle(t)
	id := s.get(t, "/v1/profiles/lookup?type=user_id&value=u-9").body["id"].(string)

	// limit is the page size: 2 makes the few filtered matches span pages;
	// the 700 page views are read 50 at a time (14 pages), since each page
	// is a request and 350 of them took minutes under -race.
	page := func(query string, limit int) []string {
		t.Helper()
		var ids []string
		cursor := ""
		for n := 0; ; n++ {
			r := s.get(t, "/v1/profiles/"+id+"/events?limit="+strconv.Itoa(limit)+"&"+query+"&cursor="+url.QueryEscape(cursor))
			if r.status != 200 {
				t.Fatalf("%s: %d %s", query, r.status, r.raw)
			}
			for _, e := range r.body["events"].([]any) {
				ids = append(ids, e.(map[string]any)["messageId"].(string))
			}
			cursor, _ = r.body["next"].(string)
			if cursor == "" || n > 1000 {
				return ids
			}
		}
	}
	if got := strings.Join(page("type=track&event="+url.QueryEscape("Order Completed")+"&source=web", 2), ","); got != "o-3,o-2,o-0" {
		t.Errorf("web orders newest first: %s", got)
	}
	if got := strings.Join(page("source=app", 2), ","); got != "o-1" {
		t.Errorf("app events: %s", got)
	}
	if got := strings.Join(page("type=identify", 2), ","); got != "id-1" {
		t.Errorf("identify events: %s", got)
	}
	if got := page("type=page&event=Home", 50); len(got) != 700 {
		t.Errorf("page views: %d, want 700", len(got))
	}
	if got := page("", 50); len(got) != 706 {
		t.Errorf("unfiltered: %d, want 706", len(got))
	}
	// The null case: a filter nothing matches is an empty page, not an error.
	if r := s.get(t, "/v1/profiles/"+id+"/events?event=Refund"); r.status != 200 || len(r.body["events"].([]any)) != 0 || r.body["next"] != "" {
		t.Errorf("no match: %d %s", r.status, r.raw)
	}
	if r := s.get(t, "/v1/profiles/"+id+"/events?type=purchase"); r.status != 400 {
		t.Errorf("unknown type: %d %s", r.status, r.raw)
	}
}

// The values the cleaners refused are listed on the profile they belong to,
// including those sent to a profile merged into it, and on no other.
func TestProfileIssues(t *testing.T) {
	std := clean.DefaultTraitStandardizer()
	s := startProc(t, func(p *profile.Processor) { p.Standardize = std.Standardize })
	// A phone one digit short and an ID number with a wrong check digit,
	// sent while anonymous; then a good profile, then the visitor signs in.
	s.post(t, "/v1/identify", `{"anonymousId":"a-7","messageId":"m-1","timestamp":"2026-03-01T08:00:00Z","traits":{"name":"张伟","phone":"1380013800"}}`)
	s.post(t, "/v1/identify", `{"userId":"u-7","messageId":"m-2","timestamp":"2026-03-01T09:00:00Z","traits":{"id_card":"11010519491231002X1"}}`)
	s.post(t, "/v1/identify", `{"userId":"u-8","messageId":"m-3","timestamp":"2026-03-01T09:00:00Z","traits":{"name":"李娜","phone":"13800138000"}}`)
	s.post(t, "/v1/identify", `{"userId":"u-7","anonymousId":"a-7","messageId":"m-4","timestamp":"2026-03-01T10:00:00Z","traits":{"city":"北京"}}`)
	s.settle(t)
	p := s.get(t, "/v1/profiles/lookup?type=user_id&value=u-7")
	id := p.body["id"].(string)
	if _, ok := p.body["traits"].(map[string]any)["phone"]; ok {
		t.Fatalf("the bad phone was set: %s", p.raw)
	}
	r := s.get(t, "/v1/profiles/"+id+"/issues")
	if r.status != 200 {
		t.Fatalf("issues: %d %s", r.status, r.raw)
	}
	got := map[string]map[string]any{}
	for _, x := range r.body["issues"].([]any) {
		m := x.(map[string]any)
		got[m["trait"].(string)] = m
	}
	if len(got) != 2 {
		t.Fatalf("want the phone and the id_card issues: %s", r.raw)
	}
	ph := got["phone"]
	if ph["value"] != "1380013800" || ph["source"] != "web" || ph["message_id"] != "m-1" || ph["time"] != "2026-03-01T08:00:00Z" || ph["reason"] == "" {
		t.Errorf("phone issue: %v", ph)
	}
	if got["id_card"]["value"] != "11010519491231002X1" || got["id_card"]["message_id"] != "m-2" {
		t.Errorf("id_card issue: %v", got["id_card"])
	}
	// The clean profile has none.
	other := s.get(t, "/v1/profiles/lookup?type=user_id&value=u-8").body["id"].(string)
	if r := s.get(t, "/v1/profiles/"+other+"/issues"); r.status != 200 || len(r.body["issues"].([]any)) != 0 {
		t.Errorf("clean profile: %d %s", r.status, r.raw)
	}
	if r := s.get(t, "/v1/profiles/p_nope/issues"); r.status != 404 {
		t.Errorf("unknown profile: %d %s", r.status, r.raw)
	}
	if r := s.get(t, "/v1/profiles/"+id+"/issues?limit=0"); r.status != 400 {
		t.Errorf("limit 0: %d %s", r.status, r.raw)
	}
}

// A merge made by record linkage is undone from the profile's journal: the
// profiles split, each keeps its own events, the undo is journalled with who
// decided it, a rebuild from the log gives the same split, and the same
// undo again is a conflict.
func TestUndoLinkageMerge(t *testing.T) {
	s := linkServer(t, []string{"name", "email", "phone"})
	ctx := context.Background()
	s.post(t, "/v1/identify", `{"anonymousId":"web-1","messageId":"a-1","timestamp":"2026-03-01T08:00:00Z","traits":{"name":"张伟","email":"zhang.wei@example.com"}}`)
	s.post(t, "/v1/track", `{"anonymousId":"web-1","event":"Order Completed","messageId":"a-2","timestamp":"2026-03-01T08:10:00Z"}`)
	s.post(t, "/v1/identify", `{"anonymousId":"shop-9","messageId":"b-1","timestamp":"2026-03-02T08:00:00Z","traits":{"name":"张伟","phone":"138 0013 8000"}}`)
	// An identity merge, by a shared identifier, of another customer.
	s.post(t, "/v1/identify", `{"anonymousId":"web-7","messageId":"c-1","timestamp":"2026-03-01T08:00:00Z","traits":{"name":"李娜"}}`)
	s.post(t, "/v1/identify", `{"userId":"u-7","messageId":"c-2","timestamp":"2026-03-01T09:00:00Z"}`)
	s.post(t, "/v1/identify", `{"anonymousId":"web-7","userId":"u-7","messageId":"c-3","timestamp":"2026-03-01T10:00:00Z"}`)
	s.settle(t)
	phone, err := clean.Phone("138 0013 8000", "CN")
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(typ, v string) string {
		t.Helper()
		r := s.get(t, "/v1/profiles/lookup?type="+typ+"&value="+url.QueryEscape(v))
		if r.status != 200 {
			t.Fatalf("lookup %s %s: %d %s", typ, v, r.status, r.raw)
		}
		return r.body["id"].(string)
	}
	a, b := lookup("email", "zhang.wei@example.com"), lookup("phone", phone)
	if a == b {
		t.Fatal("the two records were merged before the link")
	}
	c := &linkage.Candidate{A: portrait.Identifier{Type: portrait.IDEmail, Value: "zhang.wei@example.com"}, B: portrait.Identifier{Type: portrait.IDPhone, Value: phone},
		AProfile: a, BProfile: b, Probability: 0.9, Status: linkage.Pending, FoundAt: time.Now()}
	c.ID = linkage.PairID(c.A, c.B)
	if err := s.db.SaveCandidates(ctx, []*linkage.Candidate{c}); err != nil {
		t.Fatal(err)
	}
	if r := s.admin(t, "POST", "/v1/linkage/candidates/"+c.ID+"/accept"); r.status != 200 {
		t.Fatalf("accept: %d %s", r.status, r.raw)
	}
	s.settle(t)
	merged := lookup("email", "zhang.wei@example.com")
	if lookup("phone", phone) != merged {
		t.Fatal("accepting the pair did not merge it")
	}
	var link, byID float64
	for _, m := range s.get(t, "/v1/profiles/"+merged+"/merges").body["merges"].([]any) {
		m := m.(map[string]any)
		if m["kind"] == "merged" && strings.HasPrefix(m["message_id"].(string), "link-") {
			link = m["id"].(float64)
		}
	}
	if link == 0 {
		t.Fatal("no linkage merge in the journal")
	}
	other := lookup("user_id", "u-7")
	for _, m := range s.get(t, "/v1/profiles/"+other+"/merges").body["merges"].([]any) {
		if m := m.(map[string]any); m["kind"] == "merged" {
			byID = m["id"].(float64)
		}
	}

	if r := s.admin(t, "POST", fmt.Sprintf("/v1/profiles/%s/merges/999999/undo", merged)); r.status != 404 {
		t.Errorf("unknown merge: %d %s", r.status, r.raw)
	}
	if r := s.admin(t, "POST", fmt.Sprintf("/v1/profiles/%s/merges/x/undo", merged)); r.status != 400 {
		t.Errorf("merge id not a number: %d %s", r.status, r.raw)
	}
	if byID == 0 {
		t.Fatal("no identity merge in the journal of u-7")
	}
	// An identity merge is undone too (TestUndoIdentityMerge): here, only
	// that it is a decision of its own, not a linkage undo.
	if r := s.admin(t, "POST", fmt.Sprintf("/v1/profiles/%s/merges/%d/undo", other, int64(byID))); r.status != 200 || r.body["split"] == nil {
		t.Errorf("identity merge undo: %d %s", r.status, r.raw)
	}
	r := s.admin(t, "POST", fmt.Sprintf("/v1/profiles/%s/merges/%d/undo", merged, int64(link)))
	if r.status != 200 || r.body["by"] != "web" {
		t.Fatalf("undo: %d %s", r.status, r.raw)
	}
	s.settle(t)
	a2, b2 := lookup("email", "zhang.wei@example.com"), lookup("phone", phone)
	if a2 == b2 {
		t.Fatal("the undo did not split the profiles")
	}
	events := func(id string) string {
		var ids []string
		for _, e := range s.get(t, "/v1/profiles/"+id+"/events").body["events"].([]any) {
			ids = append(ids, e.(map[string]any)["messageId"].(string))
		}
		sort.Strings(ids)
		return strings.Join(ids, ",")
	}
	if got := events(a2); got != "a-1,a-2" {
		t.Errorf("events of the web profile after the undo: %s", got)
	}
	if got := events(b2); got != "b-1" {
		t.Errorf("events of the shop profile after the undo: %s", got)
	}
	// The undo is journalled, with who decided it.
	journalled := false
	for _, m := range s.get(t, "/v1/profiles/"+a2+"/merges").body["merges"].([]any) {
		m := m.(map[string]any)
		if m["kind"] == "retracted" && strings.Contains(m["reason"].(string), "decided by web") {
			journalled = true
		}
	}
	if !journalled {
		t.Errorf("the undo is not in the journal: %s", s.get(t, "/v1/profiles/"+a2+"/merges").raw)
	}
	if r := s.admin(t, "POST", fmt.Sprintf("/v1/profiles/%s/merges/%d/undo", a2, int64(link))); r.status != 409 {
		t.Errorf("undo twice: %d %s", r.status, r.raw)
	}

	// A rebuild from the log gives the same split: the log copied into a
	// fresh store and replayed by a fresh processor.
	db2 := s.replayed(t)
	rebuilt := func(id portrait.Identifier) string {
		t.Helper()
		p, err := db2.ProfileByIdentifier(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		evs, _, err := db2.ProfileEvents(ctx, p.ID, portrait.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.MessageID)
		}
		sort.Strings(ids)
		return p.ID + " " + strings.Join(ids, ",")
	}
	ra, rb := rebuilt(c.A), rebuilt(c.B)
	if strings.Fields(ra)[0] == strings.Fields(rb)[0] || strings.Fields(ra)[1] != "a-1,a-2" || strings.Fields(rb)[1] != "b-1" {
		t.Errorf("rebuild: %s / %s", ra, rb)
	}
}
