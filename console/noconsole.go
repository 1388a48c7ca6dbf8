//go:build noconsole

// Package console holds Portrait's web console; this build (tag noconsole)
// leaves it out, and the server answers `/` with the API's JSON 404.
package console

import "io/fs"

// Dist returns nil: the console is not in this binary.
func Dist() fs.FS { return nil }
