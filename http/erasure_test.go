package http_test

import (
	"net/http"
	"testing"

	porthttp "github.com/portrait-cdp/portrait/http"

	"github.com/portrait-cdp/portrait/erasure"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
)

func startErasure(t *testing.T) *server {
	var proc *profile.Processor
	return startProc(t, func(p *profile.Processor) {
		proc = p
		p.Enrichers = append(p.Enrichers, erasure.ConsentEnricher{})
	}, func(s *porthttp.Server, db *sqlite.DB) {
		sup := &erasure.Suppressor{EventLog: db, Store: db, IdentifiersOf: proc.Identifiers}
		if err := sup.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		s.Events = sup
		s.Erasure = &erasure.Service{Proc: proc, Store: db, Suppressor: sup, Log: sup}
	})
}

// TestEraseThroughTheAPI: export, erase (by id and by identifier), 404
// afterwards, suppression at ingest with its counter, and lifting it.
func TestEraseThroughTheAPI(t *testing.T) {
	s := startErasure(t)
	admin := map[string]string{"Authorization": "Bearer " + adminKey}
	if r := s.post(t, "/v1/identify", `{"userId":"u-gone","traits":{"email":"gone@example.com","name":"Gone Person"}}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	s.post(t, "/v1/track", `{"userId":"u-gone","event":"Order Completed","properties":{"revenue":5}}`)
	s.post(t, "/v1/identify", `{"userId":"u-other","traits":{"email":"other@example.com"}}`)
	s.settle(t)
	p := s.get(t, "/v1/profiles/lookup?type=user_id&value=u-gone")
	id, _ := p.body["id"].(string)
	if id == "" {
		t.Fatal(p.raw)
	}

	ex := s.get(t, "/v1/profiles/"+id+"/export")
	evs, _ := ex.body["events"].([]any)
	if ex.status != 200 || len(evs) != 2 || ex.body["profile"] == nil {
		t.Fatalf("export: %d %s", ex.status, ex.raw)
	}

	if r := s.do(t, http.MethodDelete, "/v1/profiles/"+id, nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("erasure without a token: %d", r.status)
	}
	rc := s.do(t, http.MethodDelete, "/v1/profiles/"+id+"?reason=request", nil, admin)
	removed, _ := rc.body["removed"].(map[string]any)
	if rc.status != 200 || rc.body["hash"] == "" || removed["events"] != float64(2) {
		t.Fatalf("erase: %d %s", rc.status, rc.raw)
	}
	if r := s.get(t, "/v1/profiles/"+id); r.status != 404 {
		t.Errorf("erased profile answers %d", r.status)
	}
	if r := s.do(t, http.MethodDelete, "/v1/profiles/"+id, nil, admin); r.status != 404 {
		t.Errorf("erasing twice: %d %s", r.status, r.raw)
	}

	// The SDK keeps sending: acknowledged, not logged, counted.
	if r := s.post(t, "/v1/track", `{"userId":"u-gone","event":"Viewed"}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	s.settle(t)
	if r := s.get(t, "/v1/profiles/lookup?type=user_id&value=u-gone"); r.status != 404 {
		t.Errorf("a suppressed identifier re-created the profile: %s", r.raw)
	}
	sups := s.get(t, "/v1/suppressions")
	list, _ := sups.body["suppressions"].([]any)
	var dropped float64
	for _, x := range list {
		dropped += x.(map[string]any)["dropped"].(float64)
	}
	if len(list) < 2 || dropped != 1 {
		t.Errorf("suppressions: %s", sups.raw)
	}
	if r := s.get(t, "/v1/erasures"); len(r.body["erasures"].([]any)) != 1 {
		t.Errorf("receipts: %s", r.raw)
	}

	// Lifted: collected again.
	if r := s.do(t, http.MethodPost, "/v1/suppressions/lift", []byte(`{"type":"user_id","value":"u-gone"}`), admin); r.status != 204 {
		t.Fatalf("lift: %d %s", r.status, r.raw)
	}
	s.post(t, "/v1/track", `{"userId":"u-gone","event":"Viewed"}`)
	s.settle(t)
	if r := s.get(t, "/v1/profiles/lookup?type=user_id&value=u-gone"); r.status != 200 {
		t.Errorf("after lifting, the identifier is still dropped: %s", r.raw)
	}

	// By identifier, with the value as typed.
	rc = s.do(t, http.MethodDelete, "/v1/profiles/lookup?type=email&value=Other@Example.com", nil, admin)
	if rc.status != 200 {
		t.Fatalf("erase by identifier: %d %s", rc.status, rc.raw)
	}
	if r := s.get(t, "/v1/profiles/lookup?type=user_id&value=u-other"); r.status != 404 {
		t.Errorf("erased by identifier, still found: %s", r.raw)
	}
}

func TestConsentThroughTheAPI(t *testing.T) {
	s := startErasure(t)
	admin := map[string]string{"Authorization": "Bearer " + adminKey}
	s.post(t, "/v1/identify", `{"userId":"u-c","context":{"consent":{"categoryPreferences":{"Advertising":true}}}}`)
	s.settle(t)
	id, _ := s.get(t, "/v1/profiles/lookup?type=user_id&value=u-c").body["id"].(string)
	c := s.get(t, "/v1/profiles/"+id+"/consent")
	if m, _ := c.body["consent"].(map[string]any)["marketing"].(map[string]any); m["value"] != "granted" || m["source"] != "web" {
		t.Fatalf("consent from context.consent: %s", c.raw)
	}
	r := s.do(t, http.MethodPut, "/v1/profiles/"+id+"/consent", []byte(`{"purpose":"marketing","state":"withdrawn"}`), admin)
	if r.status != http.StatusAccepted {
		t.Fatalf("set consent: %d %s", r.status, r.raw)
	}
	if r := s.do(t, http.MethodPut, "/v1/profiles/"+id+"/consent", []byte(`{"purpose":"marketing","state":"perhaps"}`), admin); r.status != 400 {
		t.Errorf("an unknown state: %d", r.status)
	}
	s.settle(t)
	c = s.get(t, "/v1/profiles/"+id+"/consent")
	if m, _ := c.body["consent"].(map[string]any)["marketing"].(map[string]any); m["value"] != "withdrawn" || m["source"] != "consent-api" {
		t.Errorf("consent after withdrawal: %s", c.raw)
	}
}
