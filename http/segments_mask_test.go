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

	create := func(body string) string { t.Helper(); return a.postSegment(t, admin, body) }
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

// TestSegmentNumberLiteralsMasked: a phone written as a number in a
// segment (traits.phone == 13800138000, phone in [13900139000], a
// condition's value 13700137000) is a value, as in tag rules: an analyst
// (internal) reads it masked in the expression, the condition tree, the
// plan (13800138000 as a person writes it; it printed 1.3800138e+10 once,
// and a number a caller writes so is masked too), the explanation and the
// business map, in any spelling; a threshold on a measure (revenue) stays
// readable; an admin reads the numbers. The definition an analyst reads,
// saved back as it is read, is refused with 400 code masked_value.
func TestSegmentNumberLiteralsMasked(t *testing.T) {
	a := newAccessEnv(t)
	an := a.tokens["analyst/internal"]
	admin := a.tokens["admin/secret"]
	// Two in the expression, two in the condition tree, a range's bounds
	// in the expression.
	phones := []string{"13800138000", "13900139000", "13700137000", "13600136000", "13500000000", "13599999999"}
	masks := []string{"138****8000", "139****9000", "137****7000", "136****6000", "135****0000", "135****9999"}

	create := func(body string) string { t.Helper(); return a.postSegment(t, admin, body) }
	exprID := create(`{"name":"mobile numbers","expression":"traits.phone == ` + phones[0] + ` || phone in [` + phones[1] + `, -1] || phone in ` + phones[4] + `..` + phones[5] + ` || city == \"北京市\" || revenue >= 1234567"}`)
	// A province made confidential: in_region's argument is a value of
	// it that exprlit does not see as one (no field in the call), so the
	// expression is shown as its masked plan.
	if status, out := a.call(t, admin, http.MethodPut, "/v1/classifications/trait/province", `{"level":"秘密"}`); status != http.StatusOK {
		t.Fatalf("classify province: %d %s", status, out)
	}
	regionID := create(`{"name":"region","expression":"in_region(\"广东省\") || traits.phone == ` + phones[0] + `"}`)
	if got := a.read(t, an, "/v1/segments/"+regionID); strings.Contains(got, "广东省") || strings.Contains(got, phones[0][2:8]) ||
		!strings.Contains(got, `"expression":"(traits.province startsWith \"[secret]\") || (traits.phone == \"`+masks[0]+`\")"`) {
		t.Errorf("analyst GET a region segment: want the expression shown as its masked plan: %s", got)
	}
	condID := create(`{"name":"mobile numbers tree","condition":{"any":[{"trait":"phone","op":"==","value":` + phones[2] + `},{"trait":"phone","op":"in","value":[` + phones[3] + `]},{"trait":"city","op":"==","value":"北京市"}]}}`)

	paths := []string{"/v1/segments", "/v1/segments/" + exprID, "/v1/segments/" + condID, "/v1/map?segments=" + exprID,
		"/v1/segments/" + exprID + "/explain/" + a.profile, "/v1/segments/" + condID + "/explain/" + a.profile}
	for _, path := range paths {
		inExpr := path == "/v1/segments" || strings.Contains(path, exprID)
		inCond := path == "/v1/segments" || strings.Contains(path, condID)
		got := a.read(t, an, path)
		adminGot := a.read(t, admin, path)
		for i, p := range phones {
			if ((i < 2 || i >= 4) && !inExpr) || (i >= 2 && i < 4 && !inCond) {
				continue
			}
			// The middle digits, in any spelling that keeps them
			// (13800138000, 1.3800138e+10).
			if strings.Contains(got, p[2:8]) || !strings.Contains(got, masks[i]) {
				t.Errorf("analyst GET %s: want the phone %s masked as %s: %s", path, p, masks[i], got)
			}
			// (The explanation has only the plan, which prints the
			// range's bounds as written: 13500000000, not 1.35e+10.)
			if !strings.Contains(adminGot, p[2:8]) || strings.Contains(adminGot, masks[i]) {
				t.Errorf("admin GET %s: want the phone %s as written: %s", path, p, adminGot)
			}
		}
		if !strings.Contains(got, "北京市") {
			t.Errorf("analyst GET %s: the public city literal is not shown: %s", path, got)
		}
		if inExpr && !strings.Contains(path, "explain") && !strings.Contains(got, "revenue >= 1") {
			t.Errorf("analyst GET %s: the revenue threshold is not shown: %s", path, got)
		}
	}

	// What the analyst reads, saved back as read: refused, not stored.
	for _, id := range []string{exprID, condID} {
		var st struct {
			Name       string          `json:"name"`
			Expression string          `json:"expression"`
			Condition  json.RawMessage `json:"condition"`
		}
		json.Unmarshal([]byte(a.read(t, an, "/v1/segments/"+id)), &st)
		body, _ := json.Marshal(map[string]any{"name": st.Name, "expression": st.Expression, "condition": st.Condition})
		if st.Expression == "" {
			body, _ = json.Marshal(map[string]any{"name": st.Name, "condition": st.Condition})
		} else {
			body, _ = json.Marshal(map[string]any{"name": st.Name, "expression": st.Expression})
		}
		status, out := a.call(t, admin, http.MethodPut, "/v1/segments/"+id, string(body))
		if status != http.StatusBadRequest || !strings.Contains(string(out), `"masked_value"`) {
			t.Errorf("PUT %s as read by the analyst: want 400 with code masked_value, got %d %s", body, status, out)
		}
	}
	if got := a.read(t, admin, "/v1/segments/"+exprID); !strings.Contains(got, phones[0]) {
		t.Errorf("the refused PUT changed the definition: %s", got)
	}
}

// postSegment saves a segment (a JSON definition) and returns its id.
func (a *accessEnv) postSegment(t *testing.T, token, body string) string {
	t.Helper()
	status, out := a.call(t, token, http.MethodPost, "/v1/segments", body)
	var st struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(out, &st); status != http.StatusCreated || st.ID == "" {
		t.Fatalf("create %s: %d %s", body, status, out)
	}
	return st.ID
}
