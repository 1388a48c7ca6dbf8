package sqlite_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/sqlite"
)

// A restored data directory holds the store's files: owner-only, as the
// server creates one (it was created 0750).
func TestRestoredDirectoryIsPrivate(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	db, err := sqlite.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	var buf bytes.Buffer
	if _, err := sqlite.Backup(ctx, src, t.TempDir(), &buf, time.Now); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := sqlite.Restore(ctx, &buf, dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Errorf("the restored data directory is %v (%v), want owner-only", st.Mode().Perm(), err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v", filepath.Base(f), st.Mode().Perm())
		}
	}
}
