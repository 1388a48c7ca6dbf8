package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
)

// Moving an embedded deployment here (portrait migrate): both stores have
// the same tables with the same column names, so the move is a copy, table
// by table, into an empty store, in one transaction: a move that fails
// leaves the target as it was.

// RowSource is a table's rows as an import reads them: the shape of a COPY
// source (sqlite.ExportRows is one).
type RowSource interface {
	Next() bool
	Values() ([]any, error)
	Err() error
}

// Import is a move into the store under way; Commit makes it visible.
type Import struct {
	tx pgx.Tx
	// columns are the target's column types by table and column
	// (information_schema's data_type).
	columns map[string]map[string]string
	done    map[string]bool
}

// BeginImport starts a move into the store, which must hold no events (a
// store already in use is not merged into). Appends on other nodes wait
// until it ends.
func (db *DB) BeginImport(ctx context.Context) (*Import, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot begin the import")
	}
	imp := &Import{tx: tx, columns: map[string]map[string]string{}, done: map[string]bool{}}
	if err := imp.begin(ctx); err != nil {
		tx.Rollback(context.Background())
		return nil, err
	}
	return imp, nil
}

func (imp *Import) begin(ctx context.Context) error {
	if _, err := imp.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockAppend); err != nil {
		return portrait.Wrap(err, "cannot lock the event log")
	}
	var events int64
	if err := imp.tx.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events); err != nil {
		return portrait.Wrap(err, "cannot count the target's events")
	}
	if events > 0 {
		return portrait.Errorf(portrait.ECONFLICT, "the target store already holds %d events: a deployment is moved only into an empty store", events)
	}
	rows, err := imp.tx.Query(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema()`)
	if err != nil {
		return portrait.Wrap(err, "cannot read the target's schema")
	}
	defer rows.Close()
	for rows.Next() {
		var table, column, typ string
		if err := rows.Scan(&table, &column, &typ); err != nil {
			return portrait.Wrap(err, "cannot read the target's schema")
		}
		if imp.columns[table] == nil {
			imp.columns[table] = map[string]string{}
		}
		imp.columns[table][column] = typ
	}
	if err := rows.Err(); err != nil {
		return portrait.Wrap(err, "cannot read the target's schema")
	}
	return nil
}

// Table copies rows into the table of that name, which must exist here
// with every one of the columns and be empty. Values are converted to the
// columns' types: integers, floats, text and bytes as an embedded store
// holds them. It returns the number of rows copied.
func (imp *Import) Table(ctx context.Context, table string, columns []string, rows RowSource) (int64, error) {
	types := imp.columns[table]
	if types == nil || table == "schema_migrations" {
		return 0, portrait.Errorf(portrait.EINVALID, "the target store has no table %q to copy into: it is older or newer than this Portrait", table)
	}
	if imp.done[table] {
		return 0, portrait.Errorf(portrait.EINVALID, "table %q is copied twice", table)
	}
	imp.done[table] = true
	kinds := make([]string, len(columns))
	for i, c := range columns {
		typ, ok := types[c]
		if !ok {
			return 0, portrait.Errorf(portrait.EINVALID, "the target's table %s has no column %q to copy into: it is older or newer than this Portrait", table, c)
		}
		kinds[i] = typ
	}
	var held bool
	if err := imp.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{table}.Sanitize()+`)`).Scan(&held); err != nil {
		return 0, portrait.Wrap(err, "cannot read "+table)
	}
	if held {
		return 0, portrait.Errorf(portrait.ECONFLICT, "the target store's table %s already holds rows: a deployment is moved only into an empty store", table)
	}
	src := &converting{src: rows, kinds: kinds, table: table, columns: columns}
	n, err := imp.tx.CopyFrom(ctx, pgx.Identifier{table}, columns, src)
	if src.err != nil {
		return n, src.err
	}
	if err != nil {
		return n, portrait.Wrap(err, "cannot copy "+table)
	}
	return n, nil
}

// Commit sets every sequence past the ids copied, so that the next row
// gets a new one, and makes the move visible.
func (imp *Import) Commit(ctx context.Context) error {
	rows, err := imp.tx.Query(ctx, `SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name)
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'`)
	if err != nil {
		return portrait.Wrap(err, "cannot list the target's sequences")
	}
	type serial struct{ table, column, seq string }
	var serials []serial
	for rows.Next() {
		var s serial
		var seq *string
		if err := rows.Scan(&s.table, &s.column, &seq); err != nil {
			rows.Close()
			return portrait.Wrap(err, "cannot list the target's sequences")
		}
		if seq != nil {
			s.seq = *seq
			serials = append(serials, s)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return portrait.Wrap(err, "cannot list the target's sequences")
	}
	for _, s := range serials {
		// is_called false: the next value handed out is max + 1 (1 for an
		// empty table).
		q := fmt.Sprintf(`SELECT setval($1, coalesce(max(%s), 0) + 1, false) FROM %s`, pgx.Identifier{s.column}.Sanitize(), pgx.Identifier{s.table}.Sanitize())
		if _, err := imp.tx.Exec(ctx, q, s.seq); err != nil {
			return portrait.Wrap(err, "cannot set the sequence of "+s.table)
		}
	}
	if err := imp.tx.Commit(ctx); err != nil {
		return portrait.Wrap(err, "cannot commit the import")
	}
	return nil
}

// Rollback abandons the move; the store is as it was. After Commit it does
// nothing.
func (imp *Import) Rollback(ctx context.Context) error {
	if err := imp.tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return portrait.Wrap(err, "cannot roll the import back")
	}
	return nil
}

// converting converts an embedded store's values to the target's column
// types as they are copied: SQLite keeps what it was given (text in a blob
// column, an integer in a real one), PostgreSQL takes only its types.
type converting struct {
	src     RowSource
	kinds   []string
	table   string
	columns []string
	row     int64
	vals    []any
	err     error
}

func (c *converting) Next() bool {
	if c.err != nil {
		return false
	}
	c.row++
	return c.src.Next()
}

func (c *converting) Err() error {
	if c.err != nil {
		return c.err
	}
	return c.src.Err()
}

func (c *converting) Values() ([]any, error) {
	in, err := c.src.Values()
	if err != nil {
		return nil, err
	}
	if c.vals == nil {
		c.vals = make([]any, len(in))
	}
	for i, v := range in {
		out, ok := importValue(v, c.kinds[i])
		if !ok {
			// The Go type, never the value: a row of the store may hold any
			// identifier or trait, and this error is printed and logged.
			c.err = portrait.Errorf(portrait.EINVALID, "%s row %d: column %s holds a %T, which a %s column cannot take", c.table, c.row, c.columns[i], v, c.kinds[i])
			return nil, c.err
		}
		c.vals[i] = out
	}
	return c.vals, nil
}

// importValue returns v as a value of a column of PostgreSQL type kind.
func importValue(v any, kind string) (any, bool) {
	if v == nil {
		return nil, true
	}
	switch kind {
	case "bytea":
		switch x := v.(type) {
		case []byte:
			return x, true
		case string:
			return []byte(x), true
		}
	case "text", "character varying":
		switch x := v.(type) {
		case string:
			return x, true
		case []byte:
			return string(x), true
		case int64:
			return fmt.Sprint(x), true
		}
	case "bigint", "integer", "smallint":
		switch x := v.(type) {
		case int64:
			return x, true
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				return int64(x), true
			}
		}
	case "double precision", "real":
		switch x := v.(type) {
		case float64:
			return x, true
		case int64:
			return float64(x), true
		}
	case "boolean":
		if x, ok := v.(int64); ok {
			return x != 0, true
		}
	default:
		return v, true // a type not of the shared schema: as it is
	}
	return nil, false
}
