package http_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestDefinitionsCheckedAgainstClearance: a tag rule or a computed trait
// that reads a field above the definer's clearance is refused (403 naming
// the field), as a segment is: its members or its values would reveal the
// hidden field. The same definitions over visible fields are accepted, and
// a clearance that sees the field may define them.
func TestDefinitionsCheckedAgainstClearance(t *testing.T) {
	a := newAccessEnv(t)
	an := a.tokens["analyst/internal"]
	admin := a.tokens["admin/secret"]
	refused := func(token, path, body, field string) {
		t.Helper()
		status, out := a.call(t, token, http.MethodPost, path, body)
		if status != http.StatusForbidden || !strings.Contains(string(out), `\"`+field+`\"`) || !strings.Contains(string(out), "cannot be used to filter") {
			t.Errorf("POST %s %s: want 403 naming %s, got %d %s", path, body, field, status, out)
		}
	}
	accepted := func(token, path, body string) {
		t.Helper()
		if status, out := a.call(t, token, http.MethodPost, path, body); status != http.StatusCreated {
			t.Errorf("POST %s %s: %d %s", path, body, status, out)
		}
	}

	// Tags: an analyst (internal) may not tag by an ID number or a phone,
	// bare or as traits.x / traits["x"].
	refused(an, "/v1/tags", `{"name":"has_id","dimension":"value","expression":"id_number != \"\""}`, "id_number")
	refused(an, "/v1/tags", `{"name":"mobile_138","dimension":"value","expression":"purchase_count >= 1 && traits.phone startsWith \"+86138\""}`, "phone")
	refused(an, "/v1/tags", `{"name":"mail","dimension":"value","expression":"traits[\"email\"] endsWith \"example.com\""}`, "email")
	// … nor through the environment's own map, which the compiler does
	// not resolve to a trait.
	refused(an, "/v1/tags", `{"name":"env_id","dimension":"value","expression":"$env[\"id_number\"] startsWith \"1101\""}`, "id_number")
	accepted(an, "/v1/tags", `{"name":"buyer","dimension":"value","expression":"purchase_count >= 1"}`)
	accepted(admin, "/v1/tags", `{"name":"has_id","dimension":"value","expression":"id_number != \"\""}`)

	// Computed traits: a custom token that may define traits, at internal
	// clearance, may not aggregate or filter by a secret or confidential
	// property.
	status, out := a.call(t, admin, http.MethodPost, "/v1/keys", `{"name":"trait-author","role":"custom","scopes":["traits:read","traits:write"],"clearance":"internal"}`)
	var created struct {
		Secret string `json:"secret"`
	}
	if json.Unmarshal(out, &created); status != http.StatusCreated || created.Secret == "" {
		t.Fatalf("create a custom token: %d %s", status, out)
	}
	author := created.Secret
	refused(author, "/v1/traits", `{"name":"last_id","aggregate":"last","property":"id_number"}`, "id_number")
	refused(author, "/v1/traits", `{"name":"orders_by_phone","aggregate":"count","event":"Order Completed","filter":"properties.phone != \"\""}`, "phone")
	refused(author, "/v1/traits", `{"name":"orders_by_mail","aggregate":"count","filter":"properties[\"email\"] == \"x\""}`, "email")
	// A nested property is its own field: contact.phone is a phone.
	refused(author, "/v1/traits", `{"name":"orders_by_contact","aggregate":"count","filter":"properties.contact.phone startsWith \"+86138\""}`, "phone")
	accepted(author, "/v1/traits", `{"name":"orders_n","aggregate":"count","event":"Order Completed","filter":"properties.quantity > 1"}`)
	accepted(admin, "/v1/traits", `{"name":"last_id","aggregate":"last","property":"id_number"}`)
}
