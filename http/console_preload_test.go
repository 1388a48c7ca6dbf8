//go:build !noconsole

package http_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/console"
	porthttp "github.com/portrait-cdp/portrait/http"
)

// TestConsolePreload serves the console this binary embeds: index.html for
// a route names the route's page chunk and its static imports as
// modulepreload links (so a first load fetches them with the entry), an
// unknown route and /index.html get the shell alone, and every link names
// a file the server has.
func TestConsolePreload(t *testing.T) {
	dist := console.Dist()
	shell, err := fs.ReadFile(dist, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(dist, "routes.json")
	if err != nil {
		t.Fatal("console/dist has no routes.json: ", err)
	}
	var routes []struct {
		Path  string   `json:"path"`
		Files []string `json:"files"`
	}
	if err := json.Unmarshal(data, &routes); err != nil {
		t.Fatal(err)
	}
	files := map[string][]string{}
	for _, r := range routes {
		files[r.Path] = r.Files
	}
	s := porthttp.NewServer()
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	get := func(path string, gz bool) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			if body, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	link := regexp.MustCompile(`<link rel="modulepreload" crossorigin href="/(assets/[^"]+)">`)
	preloads := func(html string) []string {
		var out []string
		for _, m := range link.FindAllStringSubmatch(html, -1) {
			out = append(out, m[1])
		}
		return out
	}
	base := preloads(string(shell)) // what Vite put there (vue)
	for _, c := range []struct {
		path, route, page string
	}{
		{"/profiles/p_123", "/profiles/:id", "Profile"},
		{"/profiles/p_123/", "/profiles/:id", "Profile"},
		{"/profiles", "/profiles", "Search"},
		{"/", "/", "Overview"},
		{"/signin?next=%2Fmap", "/signin", "SignIn"},
		{"/segments", "/segments/:id?", "Segments"},
		{"/segments/seg_1", "/segments/:id?", "Segments"},
		{"/Accounts/a1", "/accounts/:id", "Account"},
		{"/map", "/map", "Map"},
		{"/nothing/here", "", ""},
		{"/profiles/p_1/more", "", ""},
		{"/index.html", "", ""},
	} {
		for _, gz := range []bool{false, true} {
			resp, html := get(c.path, gz)
			if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-cache" {
				t.Errorf("%s: %d %q", c.path, resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
			// Without a session cookie the page says so (see
			// TestConsolePageCarriesSession); the rest is the shell.
			const none = `    <script type="application/json" id="portrait-session">null</script>` + "\n"
			if !strings.Contains(html, none) {
				t.Errorf("%s (gzip %v): no null session block:\n%s", c.path, gz, html)
			}
			html = strings.Replace(html, none, "", 1)
			if c.route == "" {
				if html != string(shell) {
					t.Errorf("%s (gzip %v): not the shell alone:\n%s", c.path, gz, html)
				}
				continue
			}
			want := append(append([]string{}, base...), files[c.route]...)
			got := preloads(html)
			if len(files[c.route]) == 0 || strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s (gzip %v): preloads\n%v\nwant\n%v", c.path, gz, got, want)
			}
			if !regexp.MustCompile(`href="/assets/` + c.page + `-[^"]+\.js"`).MatchString(html) {
				t.Errorf("%s: no link to the %s chunk:\n%s", c.path, c.page, html)
			}
		}
	}
	// Every link of every route is a file the server has, served as a
	// module script.
	for _, r := range routes {
		if len(r.Files) == 0 {
			t.Errorf("route %s: no files", r.Path)
		}
		for _, f := range r.Files {
			if resp, _ := get("/"+f, false); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
				t.Errorf("route %s: /%s: %d %s", r.Path, f, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}
	}
}
