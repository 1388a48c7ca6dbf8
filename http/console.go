package http

import (
	"bytes"
	"compress/gzip"
	"io/fs"
	"net/http"
	"path"
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
	if name == "" {
		name = "index.html"
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
	if compressible(ext) && len(data) > 1024 && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		data = c.gzipped(name, data)
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Write(data)
}

func (c *consoleFiles) gzipped(name string, data []byte) []byte {
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

// mountConsole adds the console's own routes (sign-in by one-time link,
// sessions) and returns the file server for the catch-all, nil when the
// binary has no console.
func (s *Server) mountConsole(mux *http.ServeMux) *consoleFiles {
	s.mountSession(mux)
	fsys := s.consoleFS()
	if fsys == nil {
		return nil
	}
	return &consoleFiles{fsys: fsys}
}
