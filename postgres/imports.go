package postgres

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// Import ids are compared byte by byte (COLLATE "C"), as SQLite does, so
// that both stores order pages alike and a cursor means the same in both.

// SaveImport records (or updates) an import run's summary, as JSON.
func (db *DB) SaveImport(ctx context.Context, id, source, state string, summary []byte) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO imports (id, source, state, summary, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET source = excluded.source, state = excluded.state, summary = excluded.summary, updated_at = excluded.updated_at`,
		id, source, state, db.sealer.SealBlob(summary, datakey.BlobImport), micros(db.Now())) // summary: sealing
	if err != nil {
		return portrait.Wrap(err, "cannot record the import")
	}
	return nil
}

// ImportSummary returns the summary JSON of an import.
func (db *DB) ImportSummary(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := db.pool.QueryRow(ctx, `SELECT summary FROM imports WHERE id = $1`, id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no import %q", id)
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the import")
	}
	return db.sealer.OpenBlob(b, datakey.BlobImport) // sealing
}

// ImportSummaries returns the summary JSON of every import, oldest first.
func (db *DB) ImportSummaries(ctx context.Context) ([][]byte, error) {
	rows, err := db.pool.Query(ctx, `SELECT summary FROM imports ORDER BY updated_at, id COLLATE "C"`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot list imports")
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, portrait.Wrap(err, "cannot list imports")
		}
		if b, err = db.sealer.OpenBlob(b, datakey.BlobImport); err != nil { // sealing
			return nil, err
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot list imports")
	}
	return out, nil
}

// ImportPage returns the summary JSON of up to limit imports, most recently
// updated first, after the cursor a previous page returned ("" for the
// first page); next is "" on the last page.
func (db *DB) ImportPage(ctx context.Context, cursor string, limit int) (page [][]byte, next string, err error) {
	at, id := int64(math.MaxInt64), ""
	if cursor != "" {
		a, i, ok := strings.Cut(cursor, ":")
		n, perr := strconv.ParseInt(a, 10, 64)
		if !ok || perr != nil || i == "" {
			return nil, "", portrait.Errorf(portrait.EINVALID, "cursor %q is not one this API returned", cursor)
		}
		at, id = n, i
	}
	// A negative LIMIT is none in SQLite; NULL is none in PostgreSQL.
	var lim any = limit + 1
	if limit+1 < 0 {
		lim = nil
	}
	rows, err := db.pool.Query(ctx, `SELECT summary, updated_at, id FROM imports
		WHERE updated_at < $1 OR (updated_at = $1 AND id COLLATE "C" < $2)
		ORDER BY updated_at DESC, id COLLATE "C" DESC LIMIT $3`, at, id, lim)
	if err != nil {
		return nil, "", portrait.Wrap(err, "cannot list imports")
	}
	defer rows.Close()
	var last string
	for rows.Next() {
		var b []byte
		var u int64
		var i string
		if err := rows.Scan(&b, &u, &i); err != nil {
			return nil, "", portrait.Wrap(err, "cannot list imports")
		}
		if b, err = db.sealer.OpenBlob(b, datakey.BlobImport); err != nil { // sealing
			return nil, "", err
		}
		if len(page) == limit {
			next = last
			break
		}
		page = append(page, b)
		last = strconv.FormatInt(u, 10) + ":" + i
	}
	if err := rows.Err(); err != nil {
		return nil, "", portrait.Wrap(err, "cannot list imports")
	}
	return page, next, nil
}
