package http_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestSegmentLiteralsMasked: a segment's definition shows a condition's
// literal (an ID number, a phone) only to a caller who may see the field:
// an analyst (internal) reads it masked in the expression, the condition
// tree, the plan and the explanation's clauses, an admin (secret) reads it
// as written, and a public-level literal (city) is shown to both. Saving a
// masked literal back is refused with 400, not stored.
func TestSegmentLiteralsMasked(t *testing.T) {
	a := newAccessEnv(t)
	an := a.tokens["analyst/internal"]
	admin := a.tokens["admin/secret"]
	const id, phone = "110105194912312009", "13800138000"
	const idMask, phoneMask = "1101**********2009", "138****8000"

	create := func(body string) string {
		t.Helper()
		status, out := a.call(t, admin, http.MethodPost, "/v1/segments", body)
		var st struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(out, &st); status != http.StatusCreated || st.ID == "" {
			t.Fatalf("create %s: %d %s", body, status, out)
		}
		return st.ID
	}
	exprID := create(`{"name":"one id","expression":"id_number == \"` + id + `\" || city == \"北京市\""}`)
	// The same ID written with escapes and as a raw string: not found by
	// replacing the quoted text, shown as the masked plan instead.
	escID := create(`{"name":"escaped id","expression":"id_number == \"\\u0031\\x31` + id[2:] + `\" || id_number == ` + "`" + id + "`" + ` || city == \"北京市\""}`)
	condID := create(`{"name":"one phone","condition":{"any":[{"trait":"phone","op":"in","value":["` + phone + `"]},{"trait":"city","op":"==","value":"北京市"}]}}`)

	read := func(token, path string) string { return a.read(t, token, path) }
	for _, path := range []string{"/v1/segments", "/v1/segments/" + exprID, "/v1/segments/" + condID, "/v1/segments/" + escID, "/v1/map?segments=" + exprID,
		"/v1/segments/" + exprID + "/explain/" + a.profile, "/v1/segments/" + condID + "/explain/" + a.profile} {
		hasPhone := path == "/v1/segments" || strings.Contains(path, condID)
		got := read(an, path)
		// The ID's middle digits, which the mask hides, in any spelling
		// that leaves them readable.
		if strings.Contains(got, id[4:len(id)-4]) || strings.Contains(got, phone) {
			t.Errorf("analyst GET %s shows a literal above its clearance: %s", path, got)
		}
		if !strings.Contains(got, "北京市") {
			t.Errorf("analyst GET %s: the public city literal is not shown: %s", path, got)
		}
		if !strings.Contains(path, condID) && !strings.Contains(got, idMask) {
			t.Errorf("analyst GET %s: want the ID masked as %s: %s", path, idMask, got)
		}
		if hasPhone {
			if !strings.Contains(got, phoneMask) {
				t.Errorf("analyst GET %s: want the phone masked as %s: %s", path, phoneMask, got)
			}
		}
		got = read(admin, path)
		if strings.Contains(got, idMask) || strings.Contains(got, phoneMask) {
			t.Errorf("admin GET %s: masked for a secret clearance: %s", path, got)
		}
		if !strings.Contains(path, condID) && !strings.Contains(got, id) {
			t.Errorf("admin GET %s: want the ID as written: %s", path, got)
		}
		if hasPhone && !strings.Contains(got, phone) {
			t.Errorf("admin GET %s: want the phone as written: %s", path, got)
		}
	}

	// Saving the masked definition back is refused, by either caller.
	for _, tok := range []string{an, admin} {
		for _, body := range []string{
			`{"name":"one id","expression":"id_number == \"` + idMask + `\""}`,
			`{"name":"one phone","condition":{"trait":"phone","op":"in","value":["` + phoneMask + `"]}}`,
		} {
			status, out := a.call(t, tok, http.MethodPut, "/v1/segments/"+exprID, body)
			if status != http.StatusBadRequest || !strings.Contains(string(out), "masked value") {
				t.Errorf("PUT %s: want 400 naming the masked value, got %d %s", body, status, out)
			}
		}
	}
	if got := read(admin, "/v1/segments/"+exprID); !strings.Contains(got, id) {
		t.Errorf("the refused PUT changed the definition: %s", got)
	}
}
