package http_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/storetest"
)

// TestDataKeyStatus: GET /v1/keys/data-key answers an auditor (and an
// admin) the current data key, the keys configured, what stored values
// still name each key (an identifier sealed under the current key, one
// under a key no longer configured) and the last rotation from the audit
// log with its old_versions_may_remain; a marketing token is refused.
func TestDataKeyStatus(t *testing.T) {
	ctx := context.Background()
	lines := storetest.KeyLines(t, "k0", "k1", "k2")
	var store *sqlite.DB
	s := startProc(t, nil, func(s *porthttp.Server, db *sqlite.DB) {
		store = db
		db.SetSealer(&datakey.Sealer{Ring: storetest.Ring(t, lines[0]), Levels: storetest.AllSecret{}})
		s.DataKeys, s.Audit = db, db
	})
	// k0 seals one identifier, then is dropped from the ring (the
	// processor is idle between the two: settled).
	if r := s.post(t, "/v1/identify", `{"userId":"u-0","traits":{"name":"Z"}}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	s.settle(t)
	store.SetSealer(&datakey.Sealer{Ring: storetest.Ring(t, lines[1:]...), Levels: storetest.AllSecret{}})
	tokens := map[string]string{}
	for _, role := range []string{access.RoleAuditor, access.RoleMarketing, access.RoleAdmin} {
		secret := access.NewSecret("pat_")
		if err := store.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyAdmin, Name: role, Role: role, Clearance: "internal"}, secret); err != nil {
			t.Fatal(err)
		}
		tokens[role] = secret
	}
	if r := s.post(t, "/v1/identify", `{"userId":"u-1","traits":{"name":"A"}}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	s.settle(t)
	held := &storeseal.OldVersions{Holders: []storeseal.Holder{{Kind: storeseal.HolderPrepared, Name: "tx-1"}}, Note: "held"}
	if err := store.Record(ctx, portrait.AuditRecord{Actor: "cli", Action: "data_key.rotate", Target: "k2",
		Detail: map[string]any{"keys": []string{"k1", "k2"}, "resealed": &storeseal.Resealed{Events: 3, OldVersions: held}}}); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{access.RoleAuditor, access.RoleAdmin} {
		r := s.do(t, http.MethodGet, "/v1/keys/data-key", nil, map[string]string{"Authorization": "Bearer " + tokens[role]})
		if r.status != 200 {
			t.Fatalf("%s: %d %s", role, r.status, r.raw)
		}
		b := r.body
		ref, _ := b["referenced"].(map[string]any)
		k2, _ := ref["k2"].(map[string]any)
		k0, _ := ref["k0"].(map[string]any)
		last, _ := b["last_rotation"].(map[string]any)
		nc, _ := b["not_configured"].([]any)
		if b["current"] != "k2" || b["sealing"] != true || len(b["keys"].([]any)) != 2 {
			t.Errorf("%s: keys %s", role, r.raw)
		}
		if k2["identities"] != float64(1) || k0["identities"] != float64(1) || len(nc) != 1 || nc[0] != "k0" {
			t.Errorf("%s: what names each key: %s", role, r.raw)
		}
		if last == nil || last["by"] != "cli" || last["new_key"] != "k2" || last["at"] == nil || last["old_versions_may_remain"] == nil {
			t.Errorf("%s: the last rotation: %s", role, r.raw)
		}
	}
	if r := s.do(t, http.MethodGet, "/v1/keys/data-key", nil, map[string]string{"Authorization": "Bearer " + tokens[access.RoleMarketing]}); r.status != http.StatusForbidden {
		t.Errorf("marketing: %d %s", r.status, r.raw)
	}
}
