package tracking_test

import (
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/tracking"
)

// Secret- and confidential-level values (issue 15): a Chinese ID number, a
// mobile number, an email. None may appear in a rejection's reason, which
// is shown to roles not cleared for the raw body kept in quarantine.
const (
	secretID    = "110101199003077777"
	secretPhone = "13912345678"
	secretEmail = "zhang.san@example.com"
)

// TestRejectionReasonsNameNoValue feeds personal values through every
// rejection that used to quote what it refused, and checks each reason
// still names the field and the rule but not the value.
func TestRejectionReasonsNameNoValue(t *testing.T) {
	p := tracking.New()
	p.Blocked = func(v string) bool { return v == secretID || v == secretPhone || v == secretEmail }
	cases := []struct {
		name, typ, body, want string
		leak                  []string
	}{
		{"blocked userId", "identify", `{"userId":"` + secretID + `"}`, "userId is a blocked value", []string{secretID}},
		{"blocked userId and anonymousId", "identify", `{"userId":"` + secretPhone + `","anonymousId":"` + secretEmail + `"}`, "userId is a blocked value", []string{secretPhone, secretEmail}},
		{"blocked anonymousId", "identify", `{"anonymousId":"` + secretEmail + `"}`, "anonymousId is a blocked value", []string{secretEmail}},
		{"fractional userId", "track", `{"userId":` + secretPhone + `.5,"event":"x"}`, "userId must be a string or an integer", []string{secretPhone}},
		{"userId over 64 bits", "track", `{"userId":` + secretID + secretPhone + `,"event":"x"}`, "userId must be a string or an integer", []string{secretID, secretPhone}},
		{"email as timestamp", "track", `{"userId":"u","event":"x","timestamp":"` + secretEmail + `"}`, "timestamp: not an ISO 8601 time", []string{secretEmail}},
		{"id number as sentAt", "track", `{"userId":"u","event":"x","sentAt":"` + secretID + `"}`, "sentAt: not an ISO 8601 time", []string{secretID}},
		{"future timestamp", "track", `{"userId":"u","event":"x","timestamp":"2027-03-07T01:02:03Z"}`, "timestamp is in the future", []string{"2027-03-07"}},
		{"ancient timestamp", "track", `{"userId":"u","event":"x","timestamp":"1899-03-07T01:02:03Z"}`, "timestamp is before 1900", []string{"1899-03-07"}},
		{"phone as type", "", `{"type":"` + secretPhone + `","userId":"u"}`, "unknown event type", []string{secretPhone}},
		{"email as mismatched type", "track", `{"type":"` + secretEmail + `","userId":"u","event":"x"}`, "type does not match the track endpoint", []string{secretEmail}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := p.ParseSingle([]byte(c.body), c.typ, "web", received)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Rejected) != 1 {
				t.Fatalf("not rejected: %+v", res.Events)
			}
			r := res.Rejected[0].Reason
			if !strings.Contains(r, c.want) {
				t.Errorf("reason %q does not say %q", r, c.want)
			}
			for _, v := range c.leak {
				if strings.Contains(r, v) {
					t.Errorf("reason %q shows the value %q", r, v)
				}
			}
		})
	}
	// A batch's sentAt is refused for the whole request: its error is
	// returned to the sender and logged, so it must not carry the value.
	_, err := p.ParseBatch([]byte(`{"batch":[],"sentAt":"`+secretEmail+`"}`), "web", received)
	if err == nil || !strings.Contains(err.Error(), "sentAt") || strings.Contains(err.Error(), secretEmail) {
		t.Errorf("batch sentAt error %v", err)
	}
}
