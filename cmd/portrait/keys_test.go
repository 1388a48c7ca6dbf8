package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/sqlite"
)

func TestKeysRevoke(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"keys", "create", "--kind", "admin", "--name", "ops", "--data", data, "--json"}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	var created struct {
		ID     int64  `json:"id"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(out.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	// A console session of that key, stored as the server stores it.
	db, err := sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	k, err := db.Authenticate(ctx, portrait.KeyAdmin, created.Secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := db.CreateSession(ctx, &portrait.Session{IDHash: "abc", Key: k, Created: now, LastSeen: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	if err := run(ctx, []string{"keys", "revoke", "--data", data}, &out, &errb); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("revoke without --id: %v", err)
	}
	if err := run(ctx, []string{"keys", "revoke", "--id", strconv.FormatInt(created.ID, 10), "--data", data}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"keys", "revoke", "--id", strconv.FormatInt(created.ID, 10), "--data", data}, &out, &errb); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("revoking twice: %v", err)
	}
	db, err = sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Authenticate(ctx, portrait.KeyAdmin, created.Secret); portrait.ErrorCode(err) != portrait.EUNAUTHORIZED {
		t.Errorf("a revoked key still authenticates: %v", err)
	}
	if _, err := db.Session(ctx, "abc", now); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("a revoked key's session is still stored: %v", err)
	}
}
