package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/analytics/jobs"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/linkage"
	"github.com/portrait-cdp/portrait/segment"
)

// accessEnv is the console environment with every optional part wired
// (imports, linkage, analytics, webhooks, audit, classifications), one
// token per role and clearance level, and a few customers carrying a
// secret-level ID number.
type accessEnv struct {
	*consoleEnv
	srv      *httptest.Server
	tokens   map[string]string // "role/level" → secret
	profile  string            // a customer with phone, email and ID number
	segID    string
	idNumber string
}

func newAccessEnv(t *testing.T) *accessEnv {
	t.Helper()
	e := newConsoleEnv(t)
	ctx := context.Background()
	db := e.db
	db.KeyHashCost = 4 // bcrypt's minimum: the test makes 28 tokens
	// Three customers get a resident ID number (secret, 机密).
	var evs []*portrait.Event
	for i, u := range []string{"u01", "u02", "u03"} {
		tr, _ := json.Marshal(map[string]any{"id_number": fmt.Sprintf("11010519491231%04d", 2000+i)})
		evs = append(evs, &portrait.Event{Type: portrait.EventIdentify, UserID: u, Traits: tr, MessageID: "idn-" + u,
			Timestamp: e.now.Add(-time.Hour), ReceivedAt: e.now.Add(-time.Hour), Source: "web"})
	}
	if _, err := db.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	last, _ := db.LastSeq(ctx)
	if err := e.proc.CatchUp(ctx, last); err != nil {
		t.Fatal(err)
	}
	p, err := db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u01"})
	if err != nil {
		t.Fatal(err)
	}
	a := &accessEnv{consoleEnv: e, tokens: map[string]string{}, profile: p.ID, idNumber: "110105194912312000"}
	a.segID = e.createSegment(t, "spenders", "revenue >= 100")

	// The console env's server, rebuilt with every part wired.
	e.srv.Close()
	s := porthttp.NewServer()
	s.Now = e.proc.Now
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	s.Traits, s.Tags, s.Segments, s.Search = e.server.Traits, e.server.Tags, e.server.Segments, e.server.Search
	s.QualityStore, s.Overview = db, db
	s.Segments.Webhooks = segment.NewDispatcher(db)
	s.Importer = &importer.Importer{Log: db, Runs: db, Parser: s.Parser}
	s.ImportRuns = db
	s.Linkage = &linkage.Service{Profiles: db, Store: db, Log: db, Now: e.proc.Now, Journal: db}
	s.Analytics = jobs.NewRunner(db, db, db)
	s.Audit, s.Classifications = db, db
	s.Classifier = &access.Classifier{}
	a.srv = httptest.NewServer(s.Handler())
	t.Cleanup(a.srv.Close)

	for _, role := range append(slices.Clone(access.Roles), access.RoleCustom) {
		for _, lvl := range access.LevelNames() {
			k := &portrait.Key{Kind: portrait.KeyAdmin, Name: role + "-" + lvl, Role: role, Clearance: lvl}
			if role == access.RoleCustom {
				k.Scopes = []string{"profiles:read", "segments:read"}
			}
			secret := access.NewSecret("pat_")
			if err := db.CreateKey(ctx, k, secret); err != nil {
				t.Fatal(err)
			}
			a.tokens[role+"/"+lvl] = secret
		}
	}
	return a
}

func (a *accessEnv) call(t *testing.T, token, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, raw
}

// routesInSource lists every route the server's source registers, as the
// OpenAPI test does, expanding the tracking calls mounted in a loop.
func routesInSource(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`(?:mux\.Handle(?:Func)?|\bh)\("((?:GET|POST|PUT|PATCH|DELETE) /[^"]*)"`)
	files, _ := filepath.Glob("*.go")
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			if m[1] == "POST /v1/" {
				for _, typ := range []string{"identify", "track", "page", "screen", "group", "alias"} {
					out = append(out, "POST /v1/"+typ)
				}
				continue
			}
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// TestEveryRouteHasAnAccessRule: a route added without a rule in
// access/rules.go fails here (and is refused by the server: fail closed).
func TestEveryRouteHasAnAccessRule(t *testing.T) {
	routes := routesInSource(t)
	if len(routes) < 60 {
		t.Fatalf("found only %d routes: the pattern no longer matches how routes are mounted", len(routes))
	}
	for _, r := range routes {
		if _, ok := access.Lookup(r); !ok {
			t.Errorf("%s has no access rule in access/rules.go", r)
		}
	}
	for _, p := range access.Patterns() {
		if !slices.Contains(routes, p) {
			t.Errorf("access rule for %s, which no route registers", p)
		}
	}
}

// fill turns a pattern into a request path against the fixture: real ids
// for reads, ids that do not exist for deletes (nothing is destroyed).
func (a *accessEnv) fill(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	del := method == http.MethodDelete
	rep := map[string]string{"{id}": a.profile, "{profileId}": a.profile, "{merge}": "1", "{name}": "big_spender", "{kind}": "trait"}
	switch {
	case strings.HasPrefix(path, "/v1/segments/"):
		rep["{id}"] = a.segID
	case strings.HasPrefix(path, "/v1/keys/"), strings.HasPrefix(path, "/v1/analytics/runs/"), strings.HasPrefix(path, "/v1/imports/"),
		strings.HasPrefix(path, "/v1/linkage/candidates/"), strings.HasPrefix(path, "/v1/segment-webhooks/"):
		rep["{id}"] = "999999"
	}
	if del {
		rep["{name}"], rep["{id}"] = "no-such-thing", "999999"
	}
	for k, v := range rep {
		path = strings.ReplaceAll(path, k, v)
	}
	switch path {
	case "/v1/profiles/lookup":
		path += "?type=user_id&value=u01"
	case "/v1/search":
		path += "?q=u01"
	case "/v1/breakdown":
		path += "?by=trait:city"
	case "/v1/segments/{id}/members", "/v1/segments/" + a.segID + "/members", "/v1/segments/" + a.segID + "/export":
		path += "?traits=name,phone,email,id_number,revenue"
	case "/v1/profiles":
		path += "?limit=50"
	}
	return method, path
}

// TestAuthorisationMatrix walks every registered route × every role ×
// every clearance level and asserts allowed or denied by the route's rule,
// and, for what is allowed, that no value above the caller's clearance
// leaves the server unmasked while the profile shows it unmasked to those
// cleared for it.
func TestAuthorisationMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("the matrix makes about 2000 requests")
	}
	a := newAccessEnv(t)
	// Values at each level in the fixture: the ID number (secret), the
	// customers' emails and phones (confidential, as stored: lower-cased
	// emails, E.164 phones).
	_, raw := a.call(t, a.tokens["admin/secret"], http.MethodGet, "/v1/profiles/"+a.profile, "")
	var prof struct {
		Traits map[string]struct {
			Value any `json:"value"`
		} `json:"traits"`
	}
	json.Unmarshal(raw, &prof)
	phone, _ := prof.Traits["phone"].Value.(string)
	email, _ := prof.Traits["email"].Value.(string)
	idn, _ := prof.Traits["id_number"].Value.(string)
	if phone == "" || email == "" || idn != a.idNumber {
		t.Fatalf("fixture: phone %q email %q id %q in %s", phone, email, idn, raw)
	}
	secretVals := []string{a.idNumber}
	confVals := []string{}
	for _, c := range a.customers {
		confVals = append(confVals, strings.ToLower(c.email))
	}
	confVals = append(confVals, phone, phone[3:]) // also without +86

	routes := routesInSource(t)
	counts := map[string]int{}
	for _, pattern := range routes {
		rule, _ := access.Lookup(pattern)
		if rule.Public || rule.Ingest || pattern == "GET /v1/segments/stream" {
			continue // no principal (ingest: write keys, tested in server_test.go); the stream: TestMaskingEveryOutputPath
		}
		method, path := a.fill(pattern)
		body := ""
		if method != http.MethodGet && method != http.MethodDelete {
			body = "not json" // every write is refused before it changes anything
		}
		for _, role := range append(slices.Clone(access.Roles), access.RoleCustom) {
			for _, lvl := range access.LevelNames() {
				p := access.Principal{Role: role}
				if role == access.RoleCustom {
					p.Scopes = []string{"profiles:read", "segments:read"}
				}
				clear, _ := access.ParseLevel(lvl)
				status, out := a.call(t, a.tokens[role+"/"+lvl], method, path, body)
				label := fmt.Sprintf("%s as %s/%s", pattern, role, lvl)
				if !p.Can(rule.Scope) {
					if status != http.StatusForbidden || !strings.Contains(string(out), "may not call") {
						t.Errorf("%s: want 403 denied, got %d %.200s", label, status, out)
					}
					counts["denied"]++
					continue
				}
				if status == http.StatusForbidden || status == http.StatusUnauthorized {
					if !(strings.Contains(string(out), "cannot be used to filter") && method == http.MethodGet) {
						t.Errorf("%s: want allowed, got %d %.200s", label, status, out)
					}
				}
				counts["allowed"]++
				if status >= 300 {
					continue
				}
				// Nothing above the clearance leaves unmasked.
				check := func(level access.Level, vals []string) {
					for _, v := range vals {
						if clear < level && strings.Contains(string(out), v) {
							t.Errorf("%s: %s value %q leaves unmasked", label, level, v)
						}
					}
				}
				check(access.Secret, secretVals)
				check(access.Confidential, confVals)
				if pattern == "GET /v1/profiles/{id}" {
					masked := strings.Contains(string(out), "1101**********2000")
					if clear < access.Secret != masked {
						t.Errorf("%s: ID number masked %v, want %v: %.300s", label, masked, clear < access.Secret, out)
					}
					if clear >= access.Secret && !strings.Contains(string(out), a.idNumber) {
						t.Errorf("%s: a secret clearance does not see the ID number", label)
					}
					if clear < access.Secret {
						counts["masked"]++
					} else {
						counts["unmasked"]++
					}
				}
			}
		}
	}
	t.Logf("matrix over %d routes: %v", len(routes), counts)
	if counts["denied"] < 500 || counts["allowed"] < 300 || counts["masked"] == 0 || counts["unmasked"] == 0 {
		t.Errorf("the matrix covered too little: %v", counts)
	}
}
