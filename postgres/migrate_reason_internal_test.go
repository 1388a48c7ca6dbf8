package postgres

import (
	"strings"
	"testing"
)

type oneRow struct {
	vals []any
	done bool
}

func (r *oneRow) Next() bool             { ok := !r.done; r.done = true; return ok }
func (r *oneRow) Values() ([]any, error) { return r.vals, nil }
func (r *oneRow) Err() error             { return nil }

// TestMigrateRefusalNamesNoValue (issue 15): a value a PostgreSQL column
// cannot take stops the move with the table, row, column and types, never
// the value, which may be any identifier or trait (the message is printed
// and logged).
func TestMigrateRefusalNamesNoValue(t *testing.T) {
	for _, v := range []any{"110101199003077777", "13912345678", []byte("zhang.san@example.com")} {
		c := &converting{src: &oneRow{vals: []any{v}}, kinds: []string{"bigint"}, table: "identities", columns: []string{"value"}}
		if !c.Next() {
			t.Fatal("no row")
		}
		_, err := c.Values()
		if err == nil {
			t.Fatalf("%v: taken by a bigint column", v)
		}
		msg := err.Error()
		if !strings.Contains(msg, "identities row 1: column value") || !strings.Contains(msg, "bigint") {
			t.Errorf("%q does not say where", msg)
		}
		for _, s := range []string{"110101199003077777", "13912345678", "zhang.san"} {
			if strings.Contains(msg, s) {
				t.Errorf("%q shows %q", msg, s)
			}
		}
	}
}
