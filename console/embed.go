//go:build !noconsole

// Package console holds Portrait's web console: Vue sources in src/, and the
// built assets in dist/, committed so that `go build` needs no npm. The http
// package serves Dist at `/`.
package console

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist returns the built console (index.html at its root), or nil when the
// binary was built with the noconsole tag.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// fs.Sub fails only on an invalid path; "dist" is a constant.
		panic(err)
	}
	return sub
}
