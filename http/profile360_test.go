package http_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	porthttp "github.com/portrait-cdp/portrait/http"
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

	page := func(query string) []string {
		t.Helper()
		var ids []string
		cursor := ""
		for n := 0; ; n++ {
			r := s.get(t, "/v1/profiles/"+id+"/events?limit=2&"+query+"&cursor="+url.QueryEscape(cursor))
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
	if got := strings.Join(page("type=track&event="+url.QueryEscape("Order Completed")+"&source=web"), ","); got != "o-3,o-2,o-0" {
		t.Errorf("web orders newest first: %s", got)
	}
	if got := strings.Join(page("source=app"), ","); got != "o-1" {
		t.Errorf("app events: %s", got)
	}
	if got := strings.Join(page("type=identify"), ","); got != "id-1" {
		t.Errorf("identify events: %s", got)
	}
	if got := page("type=page&event=Home"); len(got) != 700 {
		t.Errorf("page views: %d, want 700", len(got))
	}
	if got := page(""); len(got) != 706 {
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
