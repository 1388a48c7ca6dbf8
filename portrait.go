// Package portrait holds the domain types of Portrait, a customer profiling
// platform, and the small interfaces between its parts. Technology packages
// (sqlite, http, ...) implement or consume these; they never import each other.
package portrait

import "time"

// Version is set at build time with -ldflags "-X github.com/portrait-cdp/portrait.Version=...".
var Version = "0.1.0-dev"

// Clock returns the current time. Logic that tests must reproduce takes a
// Clock instead of calling time.Now.
type Clock func() time.Time
