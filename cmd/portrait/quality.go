package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/portrait-cdp/portrait/quality"
	"github.com/portrait-cdp/portrait/sqlite"
)

// runQuality prints the data-quality report of the store --store names
// (default: the embedded one under --data). On the embedded store it only
// reads, but takes the directory's lock like every other command that
// opens it (while a server runs, use GET /v1/quality); a shared store
// (postgres://…) is read beside its running nodes.
func runQuality(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("quality", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "./portrait-data", "data directory of the embedded store")
	store := fs.String("store", "", "store URL (postgres://…; default: the embedded store under --data)")
	top := fs.Int("top", 10, "reasons listed per source")
	asJSON := fs.Bool("json", false, "machine-readable output")
	keyFile := fs.String("data-key-file", "", "data keys, to read sealed values (default: $PORTRAIT_DATA_KEY)") // sealing
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	kind, where, err := parseStore(*store, *dataDir)
	if err != nil {
		return err
	}
	if kind == storeSQLite {
		lock, err := lockIdle(where, "ask it instead: curl -H \"Authorization: Bearer $TOKEN\" http://HOST/v1/quality")
		if err != nil {
			return err
		}
		defer lock.Close()
	}
	db, err := openStore(ctx, *store, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	if lite, ok := db.(*sqlite.DB); ok { // sealing: the embedded store's
		if err := openSealedForReading(lite, *keyFile); err != nil {
			return err
		}
	}
	rep, err := quality.Build(ctx, db, time.Now(), *top)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "profiles %d, events %d, quarantined %d, duplicates merged %d (refused %d)\n", rep.Profiles, rep.Events, rep.Quarantined, rep.Duplicates.Merged, rep.Duplicates.Refused)
	for _, s := range rep.Sources {
		fmt.Fprintf(stdout, "\nsource %s: events %d, quarantined %d, imports %d (rows %d, accepted %d, duplicates %d)\n", s.Source, s.Events, s.Quarantined, s.Imports, s.Rows, s.Accepted, s.Duplicates)
		for _, r := range s.TopReasons {
			fmt.Fprintf(stdout, "  quarantined %7d  %s\n", r.Count, r.Reason)
		}
		for _, f := range s.Fields {
			fmt.Fprintf(stdout, "  %-28s complete %5.1f%%  valid %5.1f%%  invalid %d  imputed %d\n", f.Field, 100*f.Completeness, 100*f.Validity, f.Invalid, f.Imputed)
		}
	}
	if len(rep.Traits) > 0 {
		fmt.Fprintln(stdout, "\ntraits (over profiles):")
		for _, t := range rep.Traits {
			fmt.Fprintf(stdout, "  %-28s complete %5.1f%%  distinct %d\n", t.Trait, 100*t.Completeness, t.Distinct)
		}
	}
	return nil
}
