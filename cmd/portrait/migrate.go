package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/postgres"
	"github.com/portrait-cdp/portrait/sqlite"
)

// migrateResult is what "portrait migrate" copied.
type migrateResult struct {
	From    string          `json:"from"`
	To      string          `json:"to"`
	Tables  []migratedTable `json:"tables"`
	Rows    int64           `json:"rows"`
	Seconds float64         `json:"seconds"`
}

type migratedTable struct {
	File  string `json:"file"`
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// runMigrate: "portrait migrate --data DIR --to postgres://…" moves an
// embedded deployment to PostgreSQL (issue 17 §7). Both stores have the same
// tables and column names, so the move is a copy of every table into an
// empty PostgreSQL store, in one transaction there: it all arrives or
// nothing does. The data directory is locked as a server locks it, so no
// server can write to it meanwhile; the profiles arrive as they are (the
// same document bytes), and the processor on PostgreSQL goes on from the
// state's checkpoint.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./portrait-data", "data directory of the embedded store to move (no server may be running on it)")
	to := fs.String("to", "", "the PostgreSQL store to move it to (postgres://…); it must hold no events")
	asJSON := fs.Bool("json", false, "print what was copied as JSON")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if !strings.HasPrefix(*to, "postgres://") && !strings.HasPrefix(*to, "postgresql://") {
		return portrait.Errorf(portrait.EINVALID, "--to must name a PostgreSQL store (postgres://…)")
	}
	res, err := migrateToPostgres(ctx, *data, *to)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "migrated %s to %s in %.1fs:\n", res.From, res.To, res.Seconds)
	for _, t := range res.Tables {
		fmt.Fprintf(stdout, "  %-10s %-24s %10d rows\n", t.File, t.Table, t.Rows)
	}
	_, err = fmt.Fprintf(stdout, "  %d rows in %d tables\n", res.Rows, len(res.Tables))
	return err
}

func migrateToPostgres(ctx context.Context, dir, url string) (*migrateResult, error) {
	start := time.Now()
	// Opening a directory without a store would create an empty one and
	// move nothing: say so instead.
	if _, err := os.Stat(filepath.Join(dir, "events.db")); err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "%s holds no Portrait store (events.db: %v)", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	src, err := sqlite.Open(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	res := &migrateResult{From: dir, To: redactMigrateURL(url)}
	imp, err := dst.BeginImport(ctx)
	if err != nil {
		return nil, err
	}
	defer imp.Rollback(context.Background())
	err = src.ExportTables(ctx, func(t sqlite.ExportTable, rows *sqlite.ExportRows) error {
		n, err := imp.Table(ctx, t.Name, t.Columns, rows)
		if err != nil {
			return err
		}
		res.Tables = append(res.Tables, migratedTable{File: t.File, Table: t.Name, Rows: n})
		res.Rows += n
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := imp.Commit(ctx); err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// redactMigrateURL hides a password in a store URL that is printed.
func redactMigrateURL(u string) string {
	at := strings.LastIndex(u, "@")
	i := strings.Index(u, "://")
	if at < 0 || i < 0 || i+3 > at {
		return u
	}
	if c := strings.IndexByte(u[i+3:at], ':'); c >= 0 {
		return u[:i+3+c] + ":***" + u[at:]
	}
	return u
}
