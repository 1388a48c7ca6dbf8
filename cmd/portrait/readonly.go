package main

import (
	"net/http"

	"github.com/portrait-cdp/portrait"
	porthttp "github.com/portrait-cdp/portrait/http"
)

// A read-only store (issue 17): a PostgreSQL hot standby, or a database
// whose transactions are read-only by default. An api node may serve reads
// from it, near its readers and off the primary; nothing else can run on
// it, and writes are refused at the door with a message saying why, not
// with the server's error from deep inside.

// readOnlyStore is a store that may accept no writes (postgres.DB).
type readOnlyStore interface {
	ReadOnly() bool
}

// storeReadOnly says whether a's store accepts no writes.
func (a *App) storeReadOnly() bool {
	ro, ok := a.DB.(readOnlyStore)
	return ok && ro.ReadOnly()
}

// readOnlyFilter refuses every request that would write (any method but
// GET, HEAD and OPTIONS), then passes the rest to next (the role filter).
func readOnlyFilter(node string, next func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		if next != nil {
			h = next(h)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			switch req.Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				h.ServeHTTP(w, req)
			default:
				porthttp.Error(w, req, portrait.Errorf(portrait.EUNAVAILABLE, "this node (%s) reads a store that accepts no writes (a standby): send changes, sign-ins included, to a node on the primary", node))
			}
		})
	}
}
