package http_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestTagAndTraitLiteralsMasked: a tag rule's and a computed trait's
// filter literals (an ID number, a phone) are shown only to a caller who
// may see the field: an analyst or a marketer (internal) reads them masked
// in GET /v1/tags (list and taxonomy), GET /v1/tags/{name} (every version)
// and GET /v1/traits; a confidential clearance reads the phone but not the
// ID number; an admin (secret) reads both as written; a public-field
// literal (city) is shown to all. Saving a masked literal back is refused
// with 400 naming the field (code masked_value), whoever saves it, and the
// definition is left as it was.
func TestTagAndTraitLiteralsMasked(t *testing.T) {
	a := newAccessEnv(t)
	admin := a.tokens["admin/secret"]
	const id, phone, phone2 = "110105194912312009", "13800138000", "13900139000"
	const idMask, phoneMask, phone2Mask = "1101**********2009", "138****8000", "139****9000"

	post := func(token, path, body string) (int, string) {
		t.Helper()
		status, out := a.call(t, token, http.MethodPost, path, body)
		return status, string(out)
	}
	for _, c := range []struct{ path, body string }{
		{"/v1/tags", `{"name":"id_holder","dimension":"risk","expression":"traits.id_number == \"` + id + `\" || city == \"北京市\""}`},
		{"/v1/tags", `{"name":"mobile_138","dimension":"value","expression":"traits.phone startsWith \"+86138\" || phone in [\"` + phone + `\", '` + phone2 + `'] || hasPrefix(phone, \"` + phone2 + `\") || city == \"北京市\" && revenue >= 1234567"}`},
		{"/v1/traits", `{"name":"orders_by_one","aggregate":"count","event":"Order Completed","filter":"properties.phone == \"` + phone + `\" || properties.phone == 13700137000 || properties[\"id_number\"] == \"` + id + `\" || properties.city == \"北京市\""}`},
	} {
		if status, out := post(admin, c.path, c.body); status != http.StatusCreated {
			t.Fatalf("POST %s %s: %d %s", c.path, c.body, status, out)
		}
		if _, out := post(admin, c.path, c.body); !strings.Contains(out, id) && !strings.Contains(out, phone) {
			t.Errorf("admin's own create answer is masked: %s", out)
		}
	}

	read := func(token, path string) string { return a.read(t, token, path) }
	paths := []string{"/v1/tags", "/v1/tags/id_holder", "/v1/tags/mobile_138", "/v1/traits"}
	for _, who := range []string{"analyst/internal", "marketing/internal", "analyst/confidential", "admin/secret"} {
		seesPhone, seesID := who != "analyst/internal" && who != "marketing/internal", who == "admin/secret"
		for _, path := range paths {
			got := read(a.tokens[who], path)
			hasID := path != "/v1/tags/mobile_138"
			hasPhone := path != "/v1/tags/id_holder"
			if !strings.Contains(got, "北京市") {
				t.Errorf("%s GET %s: the public city literal is not shown: %s", who, path, got)
			}
			if hasID {
				// The ID's middle digits, which the mask hides.
				if strings.Contains(got, id[4:len(id)-4]) != seesID || strings.Contains(got, idMask) == seesID {
					t.Errorf("%s GET %s: want the ID number shown %v (masked as %s otherwise): %s", who, path, seesID, idMask, got)
				}
			}
			if hasPhone {
				if strings.Contains(got, phone) != seesPhone || strings.Contains(got, phoneMask) == seesPhone {
					t.Errorf("%s GET %s: want the phone shown %v (masked as %s otherwise): %s", who, path, seesPhone, phoneMask, got)
				}
			}
			if strings.HasPrefix(path, "/v1/tags") && hasPhone {
				if strings.Contains(got, phone2) != seesPhone || strings.Contains(got, phone2Mask) == seesPhone ||
					strings.Contains(got, `+86138`) != seesPhone || strings.Contains(got, `[secret]`) == seesPhone {
					t.Errorf("%s GET %s: want every phone literal (in a list, a call, a prefix) shown %v: %s", who, path, seesPhone, got)
				}
				// A threshold on a measure (revenue, confidential) is not a
				// person's value: shown, as segments show it.
				if !strings.Contains(got, `revenue >= 1234567`) {
					t.Errorf("%s GET %s: the revenue threshold is not shown as written: %s", who, path, got)
				}
			}
			// A filter's property is untyped: a phone written as a number
			// is a phone.
			if path == "/v1/traits" && (strings.Contains(got, `13700137000`) != seesPhone || strings.Contains(got, `137****7000`) == seesPhone) {
				t.Errorf("%s GET %s: want the phone written as a number shown %v: %s", who, path, seesPhone, got)
			}
		}
	}

	// Saving the masked definitions back is refused, by either caller.
	refused := func(token, path, body, field string) {
		t.Helper()
		status, out := post(token, path, body)
		var e struct {
			Error struct {
				Details []struct{ Field, Code string }
			}
		}
		json.Unmarshal([]byte(out), &e)
		if status != http.StatusBadRequest || !strings.Contains(out, "masked value") || len(e.Error.Details) != 1 ||
			e.Error.Details[0].Field != field || e.Error.Details[0].Code != "masked_value" {
			t.Errorf("POST %s %s: want 400 naming the masked value of %s, got %d %s", path, body, field, status, out)
		}
	}
	for _, who := range []string{"analyst/internal", "admin/secret"} {
		refused(a.tokens[who], "/v1/tags", `{"name":"id_holder","dimension":"risk","expression":"traits.id_number == \"`+idMask+`\" || city == \"北京市\""}`, "id_number")
		refused(a.tokens[who], "/v1/tags", `{"name":"mobile_138","dimension":"value","expression":"traits.phone startsWith \"[secret]\" || phone in [\"`+phoneMask+`\"]"}`, "phone")
	}
	refused(admin, "/v1/traits", `{"name":"orders_by_one","aggregate":"count","event":"Order Completed","filter":"properties.phone == \"`+phoneMask+`\""}`, "phone")
	if got := read(admin, "/v1/tags/id_holder"); strings.Count(got, id) != 1 || strings.Contains(got, idMask) {
		t.Errorf("the refused POST changed the tag: %s", got)
	}
	if got := read(admin, "/v1/traits"); !strings.Contains(got, phone) {
		t.Errorf("the refused POST changed the computed trait: %s", got)
	}
}

// TestMapSegmentFieldsChecked: saving a business-map cell as a segment
// (POST /v1/map/segments) builds a segment over the row's fields; a row
// defined on a field above the caller's clearance is refused with 403
// naming the field, as POST /v1/segments refuses it. A row on visible
// fields is saved, and an admin may save the hidden one.
func TestMapSegmentFieldsChecked(t *testing.T) {
	a := newAccessEnv(t)
	an := a.tokens["analyst/internal"]
	admin := a.tokens["admin/secret"]
	status, out := a.call(t, admin, http.MethodPost, "/v1/segments", `{"name":"138 mobiles","expression":"traits.phone startsWith \"+86138\""}`)
	var st struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(out, &st); status != http.StatusCreated || st.ID == "" {
		t.Fatalf("create: %d %s", status, out)
	}
	cell := func(token, seg string) (int, string) {
		status, out := a.call(t, token, http.MethodPost, "/v1/map/segments", `{"segment":"`+seg+`","stage":"purchase"}`)
		return status, string(out)
	}
	if status, out := cell(an, st.ID); status != http.StatusForbidden || !strings.Contains(out, `\"phone\"`) || !strings.Contains(out, "cannot be used to filter") {
		t.Errorf("analyst saves a cell of a phone segment: want 403 naming phone, got %d %s", status, out)
	}
	if status, out := cell(an, a.segID); status != http.StatusCreated {
		t.Errorf("analyst saves a cell of a segment on visible fields: %d %s", status, out)
	}
	if status, out := cell(admin, st.ID); status != http.StatusCreated {
		t.Errorf("admin saves a cell of a phone segment: %d %s", status, out)
	}
}

// read GETs path as token, wanting 200, and returns the body.
func (a *accessEnv) read(t *testing.T, token, path string) string {
	t.Helper()
	status, out := a.call(t, token, http.MethodGet, path, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, out)
	}
	return string(out)
}
