package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestIncapacities(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	if in := db.Incapacities(); len(in) != 0 {
		t.Errorf("a healthy database: %+v", in)
	}
	if rs := db.Recoveries(); len(rs) != 0 {
		t.Errorf("recoveries: %+v", rs)
	}
	// A database that accepts only reads (as a standby does): new
	// sessions see the setting. (Open itself fails there: migrate creates
	// schema_migrations first; hence a bare pool.)
	name := db.pool.Config().ConnConfig.Database
	if _, err := db.pool.Exec(ctx, `ALTER DATABASE `+name+` SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	roPool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	ro := &DB{URL: db.URL, pool: roPool}
	in := ro.Incapacities()
	ro.Close()
	if len(in) != 2 || in[0].Cannot != "accept events" || in[1].Cannot != "update profiles" || !strings.Contains(in[0].Reason, "only reads") {
		t.Errorf("a read-only database: %+v", in)
	}
	// Nothing answering: a pool to a port where no server listens.
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	gone := &DB{URL: "postgres://postgres:pw@127.0.0.1:1/none", pool: pool}
	defer gone.Close()
	in = gone.Incapacities()
	if len(in) != 2 || !strings.Contains(in[0].Reason, "does not answer") || strings.Contains(in[0].Reason, "pw") {
		t.Errorf("an unreachable database: %+v", in)
	}
}
