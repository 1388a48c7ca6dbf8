package importer_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/tracking"
)

// Rows that carry only a phone or an email are about someone: they are
// imported, and the identity graph joins the rows of one person (same
// phone) while a row with no usable identifier is still quarantined.
// gender is a kind, and the summary shows the bad values with their rows.
func TestRowsIdentifiedByPhoneOrEmail(t *testing.T) {
	const csv = "姓名,手机,邮箱,性别\n" +
		"张伟,138 0013 8000,,男\n" + // phone only
		"张伟,+86 13800138000,zhang.wei@example.com,先生\n" + // the same phone, with an email
		"王芳,,wang.fang@163.com,女\n" + // email only
		"李娜,12345,not-an-email,maybe\n" + // nothing valid: quarantined
		"刘洋,13900139000,,M\n"
	const mapping = `
identity: {}
columns:
  - {column: 姓名, trait: name, kind: name}
  - {column: 手机, trait: phone, kind: phone}
  - {column: 邮箱, trait: email, kind: email}
  - {column: 性别, trait: gender, kind: gender}
`
	m, err := importer.ParseMapping([]byte(mapping))
	if err != nil {
		t.Fatalf("a mapping identified by phone and email columns: %v", err)
	}
	db := openStore(t)
	im := &importer.Importer{Log: db, Runs: db, Parser: tracking.New(), Now: func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }}
	sum, err := im.Import(context.Background(), bytesInput("people.csv", []byte(csv)), importer.Options{Source: "pos", Format: "csv", Mapping: m})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rows != 5 || sum.Accepted != 4 || sum.Quarantined != 1 {
		t.Fatalf("rows %d accepted %d quarantined %d; reasons %v", sum.Rows, sum.Accepted, sum.Quarantined, sum.Reasons)
	}
	genders := map[string]any{}
	for _, e := range allEvents(t, db) {
		var tr map[string]any
		json.Unmarshal(e.Traits, &tr)
		if e.AnonymousID == "" {
			t.Errorf("event without an anonymous id: %+v", e)
		}
		genders[tr["name"].(string)] = tr["gender"]
	}
	for name, want := range map[string]string{"张伟": "male", "王芳": "female", "刘洋": "male"} {
		if genders[name] != want {
			t.Errorf("%s gender %v, want %s", name, genders[name], want)
		}
	}
	// The two 张伟 rows share a phone: one profile.
	proc := profile.NewProcessor(db, identity.DefaultRules())
	last, _ := db.LastSeq(context.Background())
	if err := proc.CatchUp(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.CountProfiles(context.Background()); n != 3 {
		t.Errorf("%d profiles, want 3 (张伟's two rows are one person)", n)
	}
	p, err := db.ProfileByIdentifier(context.Background(), portrait.Identifier{Type: "email", Value: "zhang.wei@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	phone := false
	for _, id := range p.Identifiers {
		phone = phone || id.Type == "phone" && id.Value == "+8613800138000"
	}
	if !phone {
		t.Errorf("张伟's email profile lacks the phone: %+v", p.Identifiers)
	}
	// The summary shows each bad value and its row.
	want := map[string]bool{"row 4 phone 12345": false, "row 4 email not-an-email": false, "row 4 gender maybe": false, "row 4 quarantined": false}
	for _, e := range sum.Examples {
		if e.Row != 4 || e.Reason == "" || e.Key == "" {
			t.Errorf("example %+v", e)
			continue
		}
		switch {
		case e.Quarantined:
			want["row 4 quarantined"] = true
		case e.Column == "手机" && e.Value == "12345":
			want["row 4 phone 12345"] = true
		case e.Column == "邮箱" && e.Value == "not-an-email":
			want["row 4 email not-an-email"] = true
		case e.Column == "性别" && e.Value == "maybe":
			want["row 4 gender maybe"] = true
		}
	}
	for k, ok := range want {
		if !ok {
			t.Errorf("no example for %s in %+v", k, sum.Examples)
		}
	}
}

// Examples are bounded per reason; counts stay exact.
func TestSummaryExamplesAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("crm_id,age\n")
	for i := range 50 {
		b.WriteString("c" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ",old\n")
	}
	m, err := importer.ParseMapping([]byte("identity: {user_id: crm_id}\ncolumns:\n  - {column: age, trait: age, kind: number}\n"))
	if err != nil {
		t.Fatal(err)
	}
	db := openStore(t)
	im := &importer.Importer{Log: db, Runs: db, Parser: tracking.New()}
	sum, err := im.Import(context.Background(), bytesInput("ages.csv", []byte(b.String())), importer.Options{Source: "crm", Format: "csv", Mapping: m})
	if err != nil {
		t.Fatal(err)
	}
	if n := sum.Invalid[`trait:age: number: not a number`]; n != 50 {
		t.Errorf("invalid counts %v", sum.Invalid)
	}
	if len(sum.Examples) != 5 || sum.Examples[0].Row != 1 || sum.Examples[4].Row != 5 || sum.Examples[0].Value != "old" {
		t.Fatalf("examples %+v", sum.Examples)
	}
	// Each example names its row's event, by which an erasure of that
	// row's person finds it (profile.EraseRowExamples).
	evs, err := db.ReadLog(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	byMsg := map[string]string{}
	for _, e := range evs {
		byMsg[e.MessageID] = e.UserID
	}
	for i, ex := range sum.Examples {
		if want := "c" + string(rune('a'+i)) + "a"; ex.MessageID == "" || byMsg[ex.MessageID] != want {
			t.Errorf("example of row %d names event %q (of %q), want the event of %s", ex.Row, ex.MessageID, byMsg[ex.MessageID], want)
		}
	}
}

// Without a mapping, an email or phone column identifies people, and a file
// with nothing identifying says so without naming a command-line flag.
func TestInferMappingIdentifiers(t *testing.T) {
	m, err := importer.InferMapping(bytesInput("a.csv", []byte("name,mobile,gender\n王芳,13900139000,女\n")), "csv")
	if err != nil {
		t.Fatalf("a file with a phone column: %v", err)
	}
	kinds := map[string]string{}
	for _, c := range m.Columns {
		kinds[c.Trait] = c.Kind
	}
	if kinds["gender"] != importer.KindGender || kinds["phone"] != importer.KindPhone {
		t.Errorf("inferred kinds %v", kinds)
	}
	_, err = importer.InferMapping(bytesInput("b.csv", []byte("name,city\n王芳,北京\n")), "csv")
	if portrait.ErrorCode(err) != portrait.EINVALID || strings.Contains(portrait.ErrorMessage(err), "--map") || !strings.Contains(portrait.ErrorMessage(err), "phone") {
		t.Errorf("no identifying column: %v", err)
	}
}
