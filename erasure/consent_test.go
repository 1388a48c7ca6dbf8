package erasure_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/erasure"
	"github.com/portrait-cdp/portrait/segment"
)

// TestConsentThroughSegmentsAndWebhooks: consent arrives as Segment's
// context.consent.categoryPreferences and as consent events (and through
// the API); a marketing segment, its export (members) and its webhook
// deliveries hold only the profiles that granted marketing and did not opt
// out of automated decisions (PIPL art. 24); withdrawing takes a profile
// out, and its exit is delivered.
func TestConsentThroughSegmentsAndWebhooks(t *testing.T) {
	ctx := context.Background()
	e := open(t)
	e.proc.Enrichers = append(e.proc.Enrichers, erasure.ConsentEnricher{})
	book := &erasure.ConsentBook{}

	var mu sync.Mutex
	delivered := map[string][]string{} // kind → profile ids
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Events []segment.Event `json:"events"`
		}
		json.Unmarshal(b, &body)
		mu.Lock()
		for _, ev := range body.Events {
			delivered[ev.Kind] = append(delivered[ev.Kind], ev.Profile)
		}
		mu.Unlock()
	}))
	defer hook.Close()

	svc := segment.NewService(segment.NewIndex(), e.db)
	svc.Now, svc.Behaviour, svc.Consent = e.proc.Now, e.db.SegmentBehaviour, book.Allows
	svc.Webhooks = segment.NewDispatcher(e.db)
	svc.Webhooks.Guard.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	svc.Webhooks.MaxAttempts = 1
	svc.Webhooks.Consent = book.Allows
	go svc.Webhooks.Run(ctx)
	// The book is told first: segments evaluate consent as of the change.
	e.proc.OnChange = func(c []*portrait.Profile, d []string, applied map[string][]*portrait.Event) {
		book.OnChange(c, d, applied)
		if err := svc.Apply(ctx, c, d, applied); err != nil {
			t.Error(err)
		}
	}
	e.svc.Log = e.sup

	withConsent := func(ev *portrait.Event, prefs string) *portrait.Event {
		ev.Context = json.RawMessage(`{"consent":{"categoryPreferences":` + prefs + `}}`)
		return ev
	}
	consentEvent := func(msg, user string, at time.Duration, props string) *portrait.Event {
		ev := event(msg, portrait.EventTrack, user, "", at, "")
		ev.Name, ev.Properties = "Segment Consent Preference Updated", json.RawMessage(props)
		return ev
	}
	e.send(t, []*portrait.Event{
		withConsent(event("a1", portrait.EventIdentify, "granted", "", 0, `{"vip":true}`), `{"Advertising":true,"Analytics":false}`),
		withConsent(event("b1", portrait.EventIdentify, "denied", "", 0, `{"vip":true}`), `{"Advertising":false}`),
		event("c1", portrait.EventIdentify, "never-asked", "", 0, `{"vip":true}`),
		withConsent(event("d1", portrait.EventIdentify, "opted-out", "", 0, `{"vip":true}`), `{"Advertising":true}`),
		consentEvent("d2", "opted-out", time.Minute, `{"purpose":"automated_decision","state":"withdrawn"}`),
		// A late, older decision does not override a newer one.
		withConsent(event("a0", portrait.EventTrack, "granted", "", -time.Hour, ""), `{"Advertising":false}`),
	}, nil)
	e.catchUp(t)
	if err := e.proc.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	st, err := svc.Create(ctx, &segment.Definition{Name: "VIP marketing", Expression: `vip == true`, Purpose: "marketing"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := svc.Create(ctx, &segment.Definition{Name: "VIP service", Expression: `vip == true`, Purpose: "service"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Webhooks.Create(ctx, &segment.Webhook{URL: hook.URL, Segments: []string{st.ID}}); err != nil {
		t.Fatal(err)
	}
	// A webhook declaring its own purpose on a segment that has none.
	var mu2 sync.Mutex
	var entered2 []string
	hook2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Events []segment.Event `json:"events"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		mu2.Lock()
		for _, ev := range body.Events {
			if ev.Kind == segment.Enter {
				entered2 = append(entered2, ev.Profile)
			}
		}
		mu2.Unlock()
	}))
	defer hook2.Close()
	if _, err := svc.Webhooks.Create(ctx, &segment.Webhook{URL: hook2.URL, Segments: []string{all.ID}, Purpose: "marketing"}); err != nil {
		t.Fatal(err)
	}
	idOf := func(user string) string {
		p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: user})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	members := func(seg string) []string {
		ids, _, err := svc.Members(seg, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(ids)
		return ids
	}
	if got, want := members(st.ID), []string{idOf("granted")}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("marketing segment (what its export lists): %v, want only the profile that granted %v", got, want)
	}
	if got := members(all.ID); len(got) != 4 {
		t.Errorf("a service segment is not consent-gated: %d members, want 4", len(got))
	}
	p, _ := e.db.Profile(ctx, idOf("granted"))
	if tr := p.Traits["consent_marketing"]; tr.Value != erasure.Granted || tr.MessageID != "a1" || tr.Source != "web" {
		t.Errorf("consent trait and its provenance: %+v", tr)
	}

	// Withdrawn through the API: an event through the log.
	if _, err := e.svc.SetConsent(ctx, idOf("granted"), "marketing", "withdrawn", "test-admin"); err != nil {
		t.Fatal(err)
	}
	// Granted through the API for the one never asked.
	if _, err := e.svc.SetConsent(ctx, idOf("never-asked"), "Advertising", "granted", "test-admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetConsent(ctx, idOf("never-asked"), "marketing", "maybe", "x"); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("an unknown state: %v", err)
	}
	e.catchUp(t)
	if got := members(st.ID); len(got) != 1 || got[0] != idOf("never-asked") {
		t.Errorf("after withdrawal and a grant: %v", got)
	}
	c, _ := e.svc.Consent(ctx, idOf("granted"))
	if c["marketing"].Value != erasure.Withdrawn || c["marketing"].Source != erasure.ConsentSource {
		t.Errorf("consent after withdrawal: %+v", c)
	}

	e.send(t, []*portrait.Event{
		event("l1", portrait.EventIdentify, "late-no-consent", "", time.Hour, `{"vip":true}`),
		withConsent(event("l2", portrait.EventIdentify, "late-consent", "", time.Hour, `{"vip":true}`), `{"marketing":true}`),
	}, nil)
	e.catchUp(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu2.Lock()
		got := append([]string(nil), entered2...)
		mu2.Unlock()
		if contains(got, idOf("late-no-consent")) {
			t.Fatalf("a marketing webhook was told of a profile without consent: %v", got)
		}
		if contains(got, idOf("late-consent")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the marketing webhook got %v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		ok := contains(delivered["exit"], idOf("granted")) && contains(delivered["enter"], idOf("never-asked"))
		bad := contains(delivered["enter"], idOf("denied")) || contains(delivered["enter"], idOf("opted-out"))
		mu.Unlock()
		if bad {
			t.Fatalf("a webhook was told of a profile without consent: %v", delivered)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook deliveries: %v", delivered)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
