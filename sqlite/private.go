package sqlite

import (
	"errors"
	"io/fs"
	"os"

	"github.com/portrait-cdp/portrait"
)

// privateFile makes a database file readable by its owner only: it holds
// personal data. It is created empty (a valid empty SQLite database) with
// mode 0600 before SQLite opens it, since SQLite gives its -wal and -shm
// files the mode of the database file; existing files are tightened.
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return portrait.Wrap(err, "cannot create "+path)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return portrait.Wrap(err, "cannot restrict "+p)
		}
	}
	return nil
}
