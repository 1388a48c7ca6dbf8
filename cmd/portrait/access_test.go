package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/sqlite"
)

// portrait keys create takes a role, a clearance and an expiry; portrait
// audit verify checks the audit chain.
func TestKeysWithRolesAndAuditVerify(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"keys", "create", "--kind", "admin", "--name", "desk", "--role", "service", "--expires", "24h", "--data", data, "--json"}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	var created struct {
		Role, Clearance, Secret string
	}
	json.Unmarshal(out.Bytes(), &created)
	if created.Role != "service" || created.Clearance != "confidential" {
		t.Errorf("created %+v", created)
	}
	for _, bad := range [][]string{
		{"keys", "create", "--kind", "admin", "--name", "x", "--role", "root"},
		{"keys", "create", "--kind", "admin", "--name", "x", "--role", "custom", "--scopes", "keys:write"},
		{"keys", "create", "--kind", "write", "--name", "x", "--role", "analyst"},
		{"keys", "create", "--kind", "admin", "--name", "x", "--clearance", "top"},
	} {
		if err := run(ctx, append(bad, "--data", data), &out, &errb); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%v: %v", bad, err)
		}
	}
	db, err := sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	k, err := db.Authenticate(ctx, portrait.KeyAdmin, created.Secret)
	if err != nil || k.Role != "service" || k.ExpiresAt.IsZero() {
		t.Fatalf("%+v %v", k, err)
	}
	for i := 0; i < 3; i++ {
		if err := db.Record(ctx, portrait.AuditRecord{Actor: "desk", Action: "read", Target: "/v1/profiles/p1"}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	out.Reset()
	if err := run(ctx, []string{"audit", "verify", "--data", data}, &out, &errb); err != nil || !strings.Contains(out.String(), "intact: 3 records") {
		t.Errorf("verify: %v %s", err, out.String())
	}
	// The head it prints is the anchor of the next verify; an anchor the
	// chain no longer reaches (records cut off its end) fails it.
	_, head, ok := strings.Cut(out.String(), "head: ")
	head, _, _ = strings.Cut(head, " ")
	if !ok || !strings.HasPrefix(head, "3:") {
		t.Fatalf("no head printed: %s", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"audit", "verify", "--data", data, "--anchor", head}, &out, &errb); err != nil || !strings.Contains(out.String(), "1 anchors held") {
		t.Errorf("verify against its head: %v %s", err, out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"audit", "verify", "--data", data, "--anchor", "4" + strings.TrimPrefix(head, "3")}, &out, &errb); err == nil || !strings.Contains(out.String(), "removed from its end") {
		t.Errorf("verify against an anchor past the end: %v %s", err, out.String())
	}
}
