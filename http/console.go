package http

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"html"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/console"
)

// consoleFiles serves the web console's built assets (console/dist): files
// as they are, and index.html for every other path so that the console's
// router can answer deep links (/profiles/123) after a reload.
type consoleFiles struct {
	fsys fs.FS
	// gz caches the gzip form of each compressible file: the assets never
	// change while the binary runs, so each is compressed once.
	gz sync.Map // name → []byte
	// routes are the console router's routes with the files each page
	// needs (dist/routes.json, written by the build); pages caches
	// index.html with a route's preload links, made on first use.
	routes []consoleRoute
	pages  sync.Map // route index → []byte
	// session answers for a request what GET /v1/session would: the
	// session's JSON, "null" when the request has none, nil when it cannot
	// tell. The page carries it (see withSession).
	session func(r *http.Request) []byte
}

// consoleRoute is one route of console/src/router.ts: its path pattern in
// segments (":id" one segment, ":id?" one or none at the end) and the files
// its page loads besides those index.html names.
type consoleRoute struct {
	pattern []string
	files   []string
	// fetch is the page's first API call, its parameters named as in the
	// pattern ("/v1/profiles/:id/view?events=50"), or "".
	fetch string
}

// loadRoutes reads dist/routes.json. A console built without it, or with a
// file it does not understand, is served with the shell alone: preloading
// only saves a network round, it never decides what the page shows.
func loadRoutes(fsys fs.FS) []consoleRoute {
	data, err := fs.ReadFile(fsys, "routes.json")
	if err != nil {
		return nil
	}
	var raw []struct {
		Path  string   `json:"path"`
		Files []string `json:"files"`
		Fetch string   `json:"fetch"`
	}
	if json.Unmarshal(data, &raw) != nil {
		return nil
	}
	var routes []consoleRoute
	for _, r := range raw {
		pattern := strings.Split(strings.Trim(r.Path, "/"), "/")
		if r.Path == "/" {
			pattern = nil
		}
		ok := strings.HasPrefix(r.Path, "/")
		for i, seg := range pattern {
			// Only the syntax the router uses: static segments and
			// named parameters, optional at the end. Anything else (a
			// regexp, a repeatable parameter) is not matched here.
			if strings.ContainsAny(seg, "()*+") || seg == "" || (strings.HasSuffix(seg, "?") && i != len(pattern)-1) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		cr := consoleRoute{pattern: pattern}
		if strings.HasPrefix(r.Fetch, "/v1/") {
			cr.fetch = r.Fetch
		}
		for _, f := range r.Files {
			// Only hashed assets that are in this build, and names that
			// need no escaping in an attribute.
			if !strings.HasPrefix(f, "assets/") || strings.ContainsAny(f, "\"'<>& ") {
				continue
			}
			if _, err := fs.Stat(fsys, f); err != nil {
				continue
			}
			cr.files = append(cr.files, f)
		}
		routes = append(routes, cr)
	}
	return routes
}

// match reports whether the path's segments are the route's. Like the
// console's router (vue-router's defaults), static segments match without
// regard to case.
func (r consoleRoute) match(segs []string) bool {
	n := len(r.pattern)
	if n > 0 && strings.HasPrefix(r.pattern[n-1], ":") && strings.HasSuffix(r.pattern[n-1], "?") && len(segs) == n-1 {
		return consoleRoute{pattern: r.pattern[:n-1]}.match(segs)
	}
	if len(segs) != n {
		return false
	}
	for i, p := range r.pattern {
		if strings.HasPrefix(p, ":") {
			if segs[i] == "" {
				return false
			}
		} else if !strings.EqualFold(p, segs[i]) {
			return false
		}
	}
	return true
}

// route returns the index of the route that answers the URL path, -1 for
// none (the router's not-found page: the shell alone).
func (c *consoleFiles) route(urlPath string) int {
	p := strings.Trim(path.Clean("/"+urlPath), "/")
	var segs []string
	if p != "" {
		segs = strings.Split(p, "/")
	}
	for i, r := range c.routes {
		if r.match(segs) {
			return i
		}
	}
	return -1
}

// page returns index.html with route i's files as preload links before
// </head>: the browser then fetches the page's chunks in the same round
// as the entry script instead of after the entry has run and the router
// has imported them. index.html stays no-cache; the chunks it names are
// immutable, so a later visit finds them in the HTTP cache.
func (c *consoleFiles) page(i int, shell []byte) []byte {
	if v, ok := c.pages.Load(i); ok {
		return v.([]byte)
	}
	var links bytes.Buffer
	for _, f := range c.routes[i].files {
		if path.Ext(f) == ".css" {
			links.WriteString(`    <link rel="stylesheet" crossorigin href="/` + f + "\">\n")
		} else {
			links.WriteString(`    <link rel="modulepreload" crossorigin href="/` + f + "\">\n")
		}
	}
	at := bytes.Index(shell, []byte("</head>"))
	if at < 0 || links.Len() == 0 {
		c.pages.Store(i, shell)
		return shell
	}
	out := make([]byte, 0, len(shell)+links.Len())
	out = append(out, shell[:at]...)
	out = append(out, links.Bytes()...)
	out = append(out, shell[at:]...)
	c.pages.Store(i, out)
	return out
}

// consoleTypes are set explicitly: mime.TypeByExtension reads the system's
// tables, which differ between machines (a .js served as text/plain breaks
// module scripts under nosniff).
var consoleTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".json":  "application/json",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".woff":  "font/woff",
	".woff2": "font/woff2",
	".ttf":   "font/ttf",
	".txt":   "text/plain; charset=utf-8",
	".map":   "application/json",
}

func compressible(ext string) bool {
	switch ext {
	case ".html", ".js", ".mjs", ".css", ".json", ".svg", ".txt", ".map", ".ttf":
		return true
	}
	return false
}

// consoleFS is the console the server serves: Console when set (tests),
// otherwise the one embedded in the binary (nil under the noconsole tag).
func (s *Server) consoleFS() fs.FS {
	if s.Console != nil {
		return s.Console
	}
	return console.Dist()
}

// notFound answers paths no route matched: the API keeps its JSON 404, and
// every other GET is the console's.
func (s *Server) notFound(files *consoleFiles) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		api := p == "/v1" || strings.HasPrefix(p, "/v1/")
		if api || files == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			Error(w, r, portrait.Errorf(portrait.ENOTFOUND, "no route %s %s", r.Method, p))
			return
		}
		files.serve(w, r)
	}
}

func (c *consoleFiles) serve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	// route is the console route whose page an index.html served for a
	// path (not asked for by name) preloads.
	route := -1
	if name == "" {
		name = "index.html"
		route = c.route("/")
	}
	data, err := fs.ReadFile(c.fsys, name)
	if err != nil {
		// A missing hashed asset is a 404, never index.html: a browser
		// would otherwise run HTML as a script after a redeploy.
		if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
			Error(w, r, portrait.Errorf(portrait.ENOTFOUND, "no console file %s", name))
			return
		}
		name = "index.html"
		if data, err = fs.ReadFile(c.fsys, name); err != nil {
			Error(w, r, portrait.Errorf(portrait.ENOTFOUND, "the console is not built into this binary"))
			return
		}
		route = c.route(r.URL.Path)
	}
	gzName := name
	if route >= 0 {
		data = c.page(route, data)
		gzName = name + "#" + strconv.Itoa(route)
	}
	var sess []byte
	if name == "index.html" && c.session != nil {
		if sess = c.session(r); sess != nil {
			// The page's data is asked for with the page itself, by a
			// signed-in browser only (for anyone else it would be a 401).
			var data1 string
			if route >= 0 && string(sess) != "null" {
				data1 = c.routes[route].dataURL(r.URL.Path)
			}
			data = withSession(data, sess, data1)
			gzName = "" // this request's own page: not cached
		}
	}
	h := w.Header()
	ext := path.Ext(name)
	if t, ok := consoleTypes[ext]; ok {
		h.Set("Content-Type", t)
	} else {
		h.Set("Content-Type", "application/octet-stream")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(name, "assets/") {
		// Vite puts a content hash in every asset's name.
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else if sess != nil && string(sess) != "null" {
		// The page carries the session's CSRF token: no cache may keep it.
		h.Set("Cache-Control", "private, no-store")
	} else {
		// index.html names the current assets: always revalidate it.
		h.Set("Cache-Control", "no-cache")
	}
	if ext == ".html" {
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		// Element Plus and ECharts set inline styles; scripts come only
		// from the binary itself.
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
	}
	h.Add("Vary", "Accept-Encoding")
	if sess != nil {
		h.Add("Vary", "Cookie")
	}
	if compressible(ext) && len(data) > 1024 && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		data = c.gzipped(gzName, data)
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Write(data)
}

// gzipped compresses data once per name; an empty name is compressed for
// this answer alone.
func (c *consoleFiles) gzipped(name string, data []byte) []byte {
	if name == "" {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
		zw.Write(data)
		zw.Close()
		return b.Bytes()
	}
	if v, ok := c.gz.Load(name); ok {
		return v.([]byte)
	}
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(data)
	zw.Close()
	c.gz.Store(name, b.Bytes())
	return b.Bytes()
}

// withSession puts the request's session (what GET /v1/session answers,
// or null) into the page as a JSON data block before </head>. The console
// reads it instead of asking: a cold load of any page but sign-in waited
// for that round trip, after its scripts had run, before its first render.
// A data block is not a script: the Content-Security-Policy (script-src
// 'self') does not apply, and json.Marshal escapes < > & so the JSON cannot
// close the element.
//
// dataURL, when not empty, is the page's first API call, preloaded as a
// fetch from the start of the page instead of after its scripts have run
// (main.ts asks for the same URL without headers of its own, which is what
// lets Chromium hand it the preloaded answer).
func withSession(page, sess []byte, dataURL string) []byte {
	at := bytes.Index(page, []byte("</head>"))
	if at < 0 {
		return page
	}
	var add bytes.Buffer
	add.WriteString(`    <script type="application/json" id="portrait-session">`)
	add.Write(sess)
	add.WriteString("</script>\n")
	if dataURL != "" {
		add.WriteString(`    <link rel="preload" as="fetch" crossorigin href="` + html.EscapeString(dataURL) + "\">\n")
	}
	out := make([]byte, 0, len(page)+add.Len())
	out = append(out, page[:at]...)
	out = append(out, add.Bytes()...)
	return append(out, page[at:]...)
}

// plainParam is what a path parameter may be to go into a preloaded URL
// as it is: characters encodeURIComponent leaves alone, so that the URL
// is the one the console builds.
var plainParam = regexp.MustCompile(`^[A-Za-z0-9_.~-]+$`)

// dataURL is the route's fetch with the parameters of urlPath (which the
// route matches), or "" when it has none or a parameter is not plain.
func (r consoleRoute) dataURL(urlPath string) string {
	if r.fetch == "" {
		return ""
	}
	p := strings.Trim(path.Clean("/"+urlPath), "/")
	segs := strings.Split(p, "/")
	params := map[string]string{}
	for i, pat := range r.pattern {
		if strings.HasPrefix(pat, ":") && i < len(segs) {
			params[strings.TrimSuffix(pat[1:], "?")] = segs[i]
		}
	}
	ok := true
	out := paramRe.ReplaceAllStringFunc(r.fetch, func(m string) string {
		v, found := params[m[1:]]
		if !found || !plainParam.MatchString(v) {
			ok = false
		}
		return v
	})
	if !ok {
		return ""
	}
	return out
}

var paramRe = regexp.MustCompile(`:[A-Za-z_]\w*`)

// mountConsole adds the console's own routes (sign-in by one-time link,
// sessions) and returns the file server for the catch-all, nil when the
// binary has no console.
func (s *Server) mountConsole(mux *http.ServeMux) *consoleFiles {
	s.mountSession(mux)
	fsys := s.consoleFS()
	if fsys == nil {
		return nil
	}
	return &consoleFiles{fsys: fsys, routes: loadRoutes(fsys), session: s.pageSession}
}
