package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/portrait-cdp/portrait/postgres/pgtest"
)

// "portrait bench accounts" and "portrait quality" work on the PostgreSQL
// store through --store: the bench writes its accounts to it and ranks
// them (a restart restoring the checkpoint reads no event), and the
// quality report counts the events and profiles stored there.
func TestQualityAndBenchAccountsOnPostgres(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	var out, errb bytes.Buffer
	if err := runBenchAccounts(ctx, []string{"--store", url, "--accounts", "40", "--rounds", "1", "--json"}, &out, &errb); err != nil {
		t.Fatalf("bench accounts on postgres: %v\n%s", err, errb.String())
	}
	var bench map[string]any
	if err := json.Unmarshal(out.Bytes(), &bench); err != nil || bench["accounts"] != float64(40) {
		t.Fatalf("bench accounts answered %s (%v)", out.String(), err)
	}
	out.Reset()
	if err := runQuality(ctx, []string{"--store", url, "--json"}, &out, &errb); err != nil {
		t.Fatalf("quality on postgres: %v\n%s", err, errb.String())
	}
	var rep struct {
		Events int64 `json:"events"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Events != 120 {
		t.Errorf("the quality report of the bench's store: %s (%v), want 120 events", out.String(), err)
	}
}
