package postgres

import (
	"context"
	"testing"

	"github.com/portrait-cdp/portrait/storetest"
)

func TestConfigBehaviourThroughAppend(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	b := storetest.BehaviourFixture()
	if _, err := db.Append(ctx, b.Events, nil); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range b.Profiles {
		if err := tx.PutProfile(p); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range b.Events {
		if b.Owner[i] != "" {
			if err := tx.AddProfileEvent(b.Owner[i], e); err != nil {
				t.Fatal(err)
			}
		}
	}
	for old, id := range b.Aliases {
		if err := tx.PutAlias(old, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	storetest.CheckBehaviour(t, db, b)
}
