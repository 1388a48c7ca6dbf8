// Package shareddata locates the real data sets under ../shared/data that the
// analytics tests and the benchmark harness read. The data is never copied into
// the project, so its location depends on where the checkout sits; tests skip
// when it is absent rather than fail on a machine that lacks it.
package shareddata

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the directory holding the shared data sets (it contains cdnow/,
// groceries/, ...). PORTRAIT_SHARED may name either the shared directory or its
// data/ subdirectory; otherwise Dir walks up from the working directory looking
// for shared/data, which finds ../shared/data from the module root and
// ../../../shared/data from a package directory alike.
func Dir() (string, bool) {
	if env := os.Getenv("PORTRAIT_SHARED"); env != "" {
		for _, d := range []string{filepath.Join(env, "data"), env} {
			if isDataDir(d) {
				return d, true
			}
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for d := wd; ; d = filepath.Dir(d) {
		if c := filepath.Join(d, "shared", "data"); isDataDir(c) {
			return c, true
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

func isDataDir(d string) bool {
	st, err := os.Stat(filepath.Join(d, "cdnow"))
	return err == nil && st.IsDir()
}

// Path returns the path of a file under the shared data directory, or skips
// the test with a message saying how to provide the data.
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	d, ok := Dir()
	if !ok {
		tb.Skip("shared data not found: set PORTRAIT_SHARED or place the checkout next to shared/data")
	}
	p := filepath.Join(d, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("shared data file %s not found: %v", p, err)
	}
	return p
}
