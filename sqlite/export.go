package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/portrait-cdp/portrait"
)

// ExportTable is one table of an export: the file it lives in (events.db or
// state.db), its name and its columns, in the order rows give them.
type ExportTable struct {
	File    string
	Name    string
	Columns []string
}

// ExportRows are one table's rows. Values are SQLite's own: int64, float64,
// string, []byte or nil, whatever the column declares (SQLite stores what
// it is given); the reader converts them as its columns need. The methods
// are those of a COPY source (pgx.CopyFromSource), so the rows can be
// streamed without being held.
type ExportRows struct {
	rows *sql.Rows
	vals []any
	ptrs []any
	n    int64
	err  error
}

// Next advances to the next row.
func (r *ExportRows) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	for i := range r.vals {
		r.vals[i] = nil
	}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		r.err = err
		return false
	}
	r.n++
	return true
}

// Values returns the current row; the slice is reused by Next.
func (r *ExportRows) Values() ([]any, error) { return r.vals, r.err }

// Err is the error that ended the rows, if any.
func (r *ExportRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.rows.Err()
}

// Count is the number of rows read so far.
func (r *ExportRows) Count() int64 { return r.n }

// exportFiles are the databases in the order they are exported: the
// derived state before the log, so that the log read holds every event the
// state read reflects (see BackupManifest.StateSeq).
var exportFiles = []string{"state.db", "events.db"}

// localColumns are columns only this store has, left out of an export:
// retention_runs.pending is a retention pass's unfinished state part, kept
// for crash recovery and finished by Open (compact.go); another store
// applies a pass in one transaction and has no such column.
var localColumns = map[string]map[string]bool{"retention_runs": {"pending": true}}

// localTables are tables only this store has, left out of an export:
// retention_expired is a retention pass's working list of expired events
// (filled and emptied by the pass, kept on disk so that a pass that dies
// can be finished); PostgreSQL uses a temporary table for the same list.
// retention_carried is a pass's list of the carried-forward events it
// appended, kept until the state has listed them (log migration 037);
// PostgreSQL applies that part in the pass's own transaction. Open
// finishes a stopped pass, so both are empty when a store is exported.
var localTables = map[string]bool{"retention_expired": true, "retention_carried": true}

// ExportTables calls fn with every table of the store and its rows, for a
// move to another store with the same tables and column names (portrait
// migrate). Each file is read in one read transaction, so each is one
// consistent snapshot even if something appends meanwhile; the state is
// read before the log. The migration bookkeeping (schema_migrations) and
// SQLite's own tables are left out: the target has its own. rows is valid
// only during fn; a table fn does not read to the end is not read further.
func (db *DB) ExportTables(ctx context.Context, fn func(t ExportTable, rows *ExportRows) error) error {
	for _, file := range exportFiles {
		conn := db.stateR
		if file == "events.db" {
			conn = db.logR
		}
		if err := exportFile(ctx, conn, file, fn); err != nil {
			return err
		}
	}
	return nil
}

func exportFile(ctx context.Context, conn *sql.DB, file string, fn func(t ExportTable, rows *ExportRows) error) error {
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return portrait.Wrap(err, "cannot read "+file)
	}
	defer tx.Rollback()
	// The first read fixes the transaction's snapshot: every table below
	// is read as of this moment.
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		return portrait.Wrap(err, "cannot list the tables of "+file)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return portrait.Wrap(err, "cannot list the tables of "+file)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return portrait.Wrap(err, "cannot list the tables of "+file)
	}
	for _, name := range names {
		if localTables[name] {
			continue
		}
		t := ExportTable{File: file, Name: name}
		cols, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, name)
		if err != nil {
			return portrait.Wrap(err, "cannot read the columns of "+name)
		}
		for cols.Next() {
			var c string
			if err := cols.Scan(&c); err != nil {
				cols.Close()
				return portrait.Wrap(err, "cannot read the columns of "+name)
			}
			if localColumns[name][c] {
				continue
			}
			t.Columns = append(t.Columns, c)
		}
		cols.Close()
		if err := cols.Err(); err != nil {
			return portrait.Wrap(err, "cannot read the columns of "+name)
		}
		if err := exportTable(ctx, tx, t, fn); err != nil {
			return err
		}
	}
	return nil
}

func exportTable(ctx context.Context, tx *sql.Tx, t ExportTable, fn func(t ExportTable, rows *ExportRows) error) error {
	quoted := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		quoted[i] = exportIdent(c)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+strings.Join(quoted, ", ")+` FROM `+exportIdent(t.Name))
	if err != nil {
		return portrait.Wrap(err, "cannot read "+t.Name)
	}
	defer rows.Close()
	r := &ExportRows{rows: rows, vals: make([]any, len(t.Columns)), ptrs: make([]any, len(t.Columns))}
	for i := range r.vals {
		r.ptrs[i] = &r.vals[i]
	}
	if err := fn(t, r); err != nil {
		return err
	}
	if err := r.Err(); err != nil {
		return portrait.Wrap(err, "cannot read "+t.Name)
	}
	return nil
}

func exportIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
