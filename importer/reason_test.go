package importer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/tracking"
)

// TestReasonsNameNoValue: a row whose required ID number is refused is
// quarantined with a reason naming the column, the field and the rule,
// not the number (the quarantine's reasons are in clear, beside the raw
// row that is sealed); a refused optional value (a phone, a birthday, an
// amount) leaves the same kind of reason in the imported event's context
// and in the summary's counts. The summary's examples keep the value
// (the summary is sealed whole and shown to those who import).
func TestReasonsNameNoValue(t *testing.T) {
	csv := "crm_id,id_number,mobile,birthday,amount,at\n" +
		"c1,110101199002301236,1380013,1990-02-30,12x34,2026-13-45\n" +
		"c2,110101199003071233,1380013,1990-02-30,12x34,2026-13-45\n"
	m, err := importer.ParseMapping([]byte(`mode: profiles
identity: {user_id: crm_id}
timestamp: {column: at, required: false}
columns:
  - {column: id_number, trait: id_number, kind: id_card, required: true}
  - {column: mobile, trait: mobile, kind: phone}
  - {column: birthday, trait: birthday, kind: date}
  - {column: amount, trait: amount, kind: number}
`))
	if err != nil {
		t.Fatal(err)
	}
	db := openStore(t)
	im := &importer.Importer{Log: db, Runs: db, Parser: tracking.New()}
	sum, err := im.Import(context.Background(), bytesInput("people.csv", []byte(csv)), importer.Options{Source: "crm", Format: "csv", Mapping: m})
	if err != nil {
		t.Fatal(err)
	}
	values := []string{"1101", "1990", "0230", "1380", "0013", "12x34", "2026-13"}
	check := func(where, text string) {
		t.Helper()
		for _, v := range values {
			if strings.Contains(text, v) {
				t.Errorf("%s holds %q of a value: %s", where, v, text)
			}
		}
	}
	q, err := db.ListQuarantine(context.Background(), quarantineAll("crm"))
	if err != nil || len(q) != 1 {
		t.Fatalf("quarantine %d %v", len(q), err)
	}
	if !strings.Contains(q[0].Reason, "id_number") || !strings.Contains(q[0].Reason, "birth date") {
		t.Errorf("the quarantine reason does not name the field and the rule: %s", q[0].Reason)
	}
	check("the quarantine reason", q[0].Reason)
	evs := allEvents(t, db)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	ctx := string(evs[0].Context)
	if !strings.Contains(ctx, "no such day") || !strings.Contains(ctx, "not a number") || !strings.Contains(ctx, "ISO 8601") {
		t.Errorf("the event's context does not say the rules: %s", ctx)
	}
	check("the event's context", ctx)
	for k := range sum.Invalid {
		check("the summary's counts", k)
	}
	for k := range sum.Reasons {
		check("the summary's reasons", k)
	}
}
