package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/delivery"
)

// A scheduled delivery has no caller: it runs masked to the role and
// clearance of the key that created it, recorded then (the body cannot
// choose them). A delivery made by an internal-clearance key never carries
// a phone or an email (confidential) in clear, nor their hashes; one made
// at confidential clearance does; run now by a caller of lower clearance,
// it is masked to the caller. The activation export over HTTP is masked
// to its caller the same way.
func TestDeliveryMaskedToItsCreatorsClearance(t *testing.T) {
	a := newAccessEnv(t)
	ctx := context.Background()
	c := a.customers[1] // u01: "+86 139-0013-0001"
	leaks := []string{"13900130001", strings.ToLower(c.email)}
	create := func(token, name string, hash bool) *delivery.Delivery {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"segment_id": a.segID, "identifiers": []string{"phone", "email"}, "hash": hash,
			"target": map[string]any{"kind": "file", "name": name}, "every": "24h", "role": "admin", "clearance": "secret"})
		status, out := a.call(t, token, http.MethodPost, "/v1/segment-deliveries", string(body))
		if status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, status, out)
		}
		var d delivery.Delivery
		if err := json.Unmarshal(out, &d); err != nil {
			t.Fatal(err)
		}
		return &d
	}
	stored := func(id string) *delivery.Delivery {
		t.Helper()
		ds, err := a.deliveries.Store.Deliveries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.ID == id {
				return d
			}
		}
		t.Fatalf("delivery %s not stored", id)
		return nil
	}
	file := func(r *delivery.Run) string {
		t.Helper()
		if r.Status != "ok" {
			t.Fatalf("run: %+v", r)
		}
		b, err := os.ReadFile(r.Where)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	low := create(a.tokens["marketing/internal"], "low", false)
	if low.Role != "marketing" || low.Clearance != "internal" || low.CreatedBy != "marketing-internal" {
		t.Fatalf("recorded %q %q %q, want the caller's, not the body's", low.Role, low.Clearance, low.CreatedBy)
	}
	// The scheduler's run: no request, no caller.
	run := a.deliveries.Deliver(ctx, stored(low.ID))
	text := file(run)
	for _, leak := range leaks {
		if strings.Contains(strings.ToLower(text), leak) {
			t.Errorf("a delivery made at internal clearance carries %q:\n%s", leak, text)
		}
	}
	if !strings.Contains(text, "139****0001") || !slices.Equal(run.Masked, []string{"phone", "email"}) || run.Rows == 0 {
		t.Errorf("masked delivery: %+v\n%s", run, text)
	}
	// Hashed, a hidden identifier is left out: its hash is the value to
	// anyone who hashes every phone number. Nothing is left to send.
	lowHash := create(a.tokens["marketing/internal"], "low-hash", true)
	if run := a.deliveries.Deliver(ctx, stored(lowHash.ID)); run.Status != "ok" || run.Rows != 0 || run.Skipped == 0 {
		t.Errorf("hashed delivery at internal clearance: %+v\n%s", run, file(run))
	}

	// At confidential clearance the same delivery carries the phone.
	high := create(a.tokens["marketing/confidential"], "high", false)
	run = a.deliveries.Deliver(ctx, stored(high.ID))
	if text := file(run); !strings.Contains(text, "13900130001") || len(run.Masked) != 0 {
		t.Errorf("delivery at confidential clearance: %+v\n%s", run, text)
	}
	// Run now by a public-clearance caller: masked to the caller.
	status, out := a.call(t, a.tokens["marketing/public"], http.MethodPost, "/v1/segment-deliveries/"+high.ID+"/run", "")
	var r delivery.Run
	json.Unmarshal(out, &r)
	if status != http.StatusOK || strings.Contains(file(&r), "13900130001") || !slices.Equal(r.Masked, []string{"phone", "email"}) {
		t.Errorf("run now by a public caller: %d %s", status, out)
	}

	// Downloading a delivered file is an export of personal data, and the
	// audit log says so (it recorded a "read": an auditor listing the
	// exports missed it).
	path := fmt.Sprintf("/v1/segment-deliveries/%s/runs/%d/file", high.ID, r.ID)
	if status, out := a.call(t, a.tokens["marketing/public"], http.MethodGet, path, ""); status != http.StatusOK {
		t.Fatalf("download: %d %.200s", status, out)
	}
	_, out = a.call(t, a.tokens["auditor/public"], http.MethodGet, "/v1/audit?action=export&target="+url.QueryEscape(path), "")
	if !strings.Contains(string(out), path) {
		t.Errorf("the download is not audited as an export: %.300s", out)
	}

	// The activation export over HTTP, to its caller's clearance.
	status, out = a.call(t, a.tokens["marketing/internal"], http.MethodGet, "/v1/segments/"+a.segID+"/export?identifiers=phone,email", "")
	if status != http.StatusOK || strings.Contains(string(out), "13900130001") || !strings.Contains(string(out), "139****0001") {
		t.Errorf("activation export at internal clearance: %d %.300s", status, out)
	}
	status, out = a.call(t, a.tokens["marketing/confidential"], http.MethodGet, "/v1/segments/"+a.segID+"/export?identifiers=phone", "")
	if status != http.StatusOK || !strings.Contains(string(out), "13900130001") {
		t.Errorf("activation export at confidential clearance: %d %.300s", status, out)
	}
}
