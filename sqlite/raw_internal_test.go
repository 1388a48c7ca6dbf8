package sqlite

import (
	"context"
	"regexp"

	"github.com/portrait-cdp/portrait/storetest"
)

// storetest writes its raw SQL with PostgreSQL's $1 placeholders; SQLite's
// numbered ones are ?1.
var placeholderRe = regexp.MustCompile(`\$(\d+)`)

// RawForTest is the store's SQL on the event log's database, for
// storetest's checks beneath its methods (tests of package sqlite_test).
func RawForTest(db *DB) storetest.Raw {
	return storetest.Raw{
		Exec: func(ctx context.Context, sql string, args ...any) error {
			_, err := db.logW.ExecContext(ctx, placeholderRe.ReplaceAllString(sql, "?$1"), args...)
			return err
		},
		Scan: func(ctx context.Context, sql string, args []any, dest ...any) error {
			return db.logW.QueryRowContext(ctx, placeholderRe.ReplaceAllString(sql, "?$1"), args...).Scan(dest...)
		},
		DropAuditGuards: `DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete`,
	}
}
