package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/sqlite"
)

// runBackup: "portrait backup --data DIR --to FILE". It takes no lock on
// DIR, so it runs beside the server that owns it: the copy is one
// consistent snapshot of each database (see sqlite.Backup). The archive is
// written beside FILE and renamed into place once complete and synced, so
// a backup cut short never leaves a file that looks whole.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./portrait-data", "data directory of the store to back up (a server may be running on it)")
	to := fs.String("to", "", "the backup file to write (a .tar.gz archive)")
	asJSON := fs.Bool("json", false, "print the backup's manifest as JSON")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *to == "" {
		return portrait.Errorf(portrait.EINVALID, "--to must name the backup file to write")
	}
	dir := filepath.Dir(*to)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(*to)+".partial-")
	if err != nil {
		return portrait.Wrap(err, "cannot create the backup file")
	}
	defer os.Remove(tmp.Name()) // gone after the rename; removes a partial file otherwise
	start := time.Now()
	m, err := sqlite.Backup(ctx, *data, dir, tmp, time.Now)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = portrait.Wrap(cerr, "cannot write the backup file")
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *to); err != nil {
		return portrait.Wrap(err, "cannot put the backup file in place")
	}
	return printManifest(stdout, *asJSON, "backed up to "+*to, m, time.Since(start))
}

// runRestore: "portrait restore --from FILE --data DIR" into a new (empty
// or missing) directory. The restored store applies, when it is next
// opened, the events its state had not applied when the backup was taken.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the backup file to restore")
	data := fs.String("data", "", "data directory to restore into (must be empty or not exist)")
	asJSON := fs.Bool("json", false, "print the restored backup's manifest as JSON")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *from == "" || *data == "" {
		return portrait.Errorf(portrait.EINVALID, "restore needs --from FILE and --data DIR")
	}
	f, err := os.Open(*from)
	if err != nil {
		return portrait.Errorf(portrait.EINVALID, "cannot open the backup: %v", err)
	}
	defer f.Close()
	start := time.Now()
	m, err := sqlite.Restore(ctx, f, *data)
	if err != nil {
		return err
	}
	return printManifest(stdout, *asJSON, "restored into "+*data, m, time.Since(start))
}

func printManifest(w io.Writer, asJSON bool, what string, m *sqlite.BackupManifest, took time.Duration) error {
	if asJSON {
		return json.NewEncoder(w).Encode(m)
	}
	_, err := fmt.Fprintf(w, "%s in %.1fs: %s\n", what, took.Seconds(), m)
	return err
}
