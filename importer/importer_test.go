package importer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/tracking"
)

func fileInput(path string) importer.Input {
	st, _ := os.Stat(path)
	var size int64
	if st != nil {
		size = st.Size()
	}
	return importer.Input{Name: filepath.Base(path), Size: size, Open: func() (io.ReadCloser, error) { return os.Open(path) }}
}

func bytesInput(name string, b []byte) importer.Input {
	return importer.Input{Name: name, Size: int64(len(b)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

func quarantineAll(source string) portrait.QuarantineFilter {
	return portrait.QuarantineFilter{Source: source, Limit: 1000}
}

// countQuarantine pages through the quarantine of a source.
func countQuarantine(t testing.TB, db *sqlite.DB, source string) int64 {
	var n int64
	f := quarantineAll(source)
	for {
		q, err := db.ListQuarantine(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(q) == 0 {
			return n
		}
		n += int64(len(q))
		f.After = q[len(q)-1].ID
	}
}

const crmMapping = `
mode: profiles
identity:
  user_id: crm_id
columns:
  - {column: name, trait: name, kind: name}
  - {column: phone, trait: phone, kind: phone}
  - {column: email, trait: email, kind: email}
  - {column: id_card, trait: id_card, kind: id_card}
  - {column: signup, trait: signup_date, kind: date}
  - {column: vip, trait: vip, kind: boolean}
  - {column: segment, trait: segment, kind: text, required: true}
fill:
  - {field: gender, kind: derive, from: id_card, derivation: gender_from_id_card}
  - {field: city, kind: constant, value: unknown}
`

// crmRows in CSV; the same people are written as JSONL and XLSX below.
var crmRows = [][]string{
	{"crm_id", "name", "phone", "email", "id_card", "signup", "vip", "segment"},
	{"c1", "张 三", "１３８ ００１３ ８０００", " Zhang.San@Example.COM ", "11010519491231002x", "2024/3/5", "是", "gold"},
	{"c2", "Li  Si", "12345", "not-an-email", "110105194912310021", "2024-02-30", "maybe", "silver"},
	{"c3", "Wang Wu", "", "", "", "", "", ""},
	{"", "Nobody", "", "", "", "", "", "bronze"},
}

func crmCSV() []byte {
	var b strings.Builder
	for _, r := range crmRows {
		for i, v := range r {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"` + strings.ReplaceAll(v, `"`, `""`) + `"`)
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func crmJSONL() []byte {
	var b bytes.Buffer
	for _, r := range crmRows[1:] {
		obj := map[string]any{}
		for i, v := range r {
			if v != "" {
				obj[crmRows[0][i]] = v
			}
		}
		json.NewEncoder(&b).Encode(obj)
	}
	return b.Bytes()
}

func crmXLSX(t testing.TB) []byte {
	f := excelize.NewFile()
	for i, r := range crmRows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		row := make([]any, len(r))
		for j, v := range r {
			row[j] = v
		}
		if err := f.SetSheetRow("Sheet1", cell, &row); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func openStore(t testing.TB) *sqlite.DB {
	db, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func allEvents(t testing.TB, db *sqlite.DB) []*portrait.Event {
	evs, err := db.ReadLog(context.Background(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestProfilesCleaning imports the same messy CRM rows from CSV, JSONL and
// XLSX and checks cleaning, problems left unset, quarantine and imputation.
func TestProfilesCleaning(t *testing.T) {
	m, err := importer.ParseMapping([]byte(crmMapping))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		format string
		data   []byte
	}{{"csv", crmCSV()}, {"jsonl", crmJSONL()}, {"xlsx", crmXLSX(t)}} {
		t.Run(tc.format, func(t *testing.T) {
			db := openStore(t)
			im := &importer.Importer{Log: db, Runs: db, Parser: tracking.New(), Now: func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }}
			sum, err := im.Import(context.Background(), bytesInput("crm."+tc.format, tc.data), importer.Options{Source: "crm", Format: tc.format, Mapping: m})
			if err != nil {
				t.Fatal(err)
			}
			// c3 lacks the required segment; the last row has no crm_id.
			if sum.Rows != 4 || sum.Accepted != 2 || sum.Quarantined != 2 {
				t.Fatalf("rows %d accepted %d quarantined %d; reasons %v", sum.Rows, sum.Accepted, sum.Quarantined, sum.Reasons)
			}
			if sum.Reasons["column segment (trait:segment) is required but empty"] != 1 || sum.Reasons["event has neither userId nor anonymousId"] != 1 {
				t.Errorf("reasons %v", sum.Reasons)
			}
			evs := allEvents(t, db)
			if len(evs) != 2 {
				t.Fatalf("%d events", len(evs))
			}
			var c1, c2 map[string]any
			json.Unmarshal(evs[0].Traits, &c1)
			json.Unmarshal(evs[1].Traits, &c2)
			if evs[0].UserID != "c1" {
				c1, c2 = c2, c1
			}
			for k, want := range map[string]any{"name": "张三", "phone": "+8613800138000", "email": "zhang.san@example.com", "id_card": "11010519491231002X", "signup_date": "2024-03-05", "vip": true, "gender": "female", "city": "unknown"} {
				if c1[k] != want {
					t.Errorf("c1 %s = %v, want %v", k, c1[k], want)
				}
			}
			// c2's phone, email, id card (bad check digit), date and vip are
			// invalid: left unset, and counted.
			for _, k := range []string{"phone", "email", "id_card", "signup_date", "vip", "gender"} {
				if _, ok := c2[k]; ok {
					t.Errorf("c2 %s = %v, want it unset", k, c2[k])
				}
			}
			if c2["name"] != "Li Si" {
				t.Errorf("c2 name %v", c2["name"])
			}
			for _, f := range []string{"trait:phone", "trait:email", "trait:id_card", "trait:signup_date", "trait:vip"} {
				if fs := sum.Fields[f]; fs == nil || fs.Invalid != 1 || fs.Valid != 1 {
					t.Errorf("%s stats %+v", f, fs)
				}
			}
			if fs := sum.Fields["trait:city"]; fs == nil || fs.Imputed != 2 {
				t.Errorf("city stats %+v", fs)
			}
			// The problems and imputations travel with the event.
			var ctx struct {
				Import struct {
					Invalid []struct{ Field, Column, Reason string }
					Imputed []struct{ Field, Rule string }
				}
			}
			ev2 := evs[1]
			if ev2.UserID != "c2" {
				ev2 = evs[0]
			}
			json.Unmarshal(ev2.Context, &ctx)
			if len(ctx.Import.Invalid) != 5 || len(ctx.Import.Imputed) != 1 || ctx.Import.Imputed[0].Field != "city" {
				t.Errorf("context.import %+v", ctx.Import)
			}
			// Quarantined rows keep the row whole.
			q, _ := db.ListQuarantine(context.Background(), quarantineAll("crm"))
			if len(q) != 2 || !strings.Contains(string(q[0].Raw), `"values"`) {
				t.Fatalf("quarantine %v", q)
			}
			// Re-import: nothing changes.
			again, err := im.Import(context.Background(), bytesInput("crm."+tc.format, tc.data), importer.Options{Source: "crm", Format: tc.format, Mapping: m})
			if err != nil {
				t.Fatal(err)
			}
			q2, _ := db.ListQuarantine(context.Background(), quarantineAll("crm"))
			if again.Accepted != 0 || again.Duplicates != 2 || len(q2) != 2 || len(allEvents(t, db)) != 2 {
				t.Errorf("re-import: accepted %d duplicates %d quarantine %d", again.Accepted, again.Duplicates, len(q2))
			}
		})
	}
}

// TestMalformed: a broken file is an error naming where, and nothing of it
// is written (the checking pass runs before any append).
func TestMalformed(t *testing.T) {
	m, _ := importer.ParseMapping([]byte(crmMapping))
	good := string(crmCSV())
	for _, tc := range []struct {
		name, format, data, want string
	}{
		{"bare quote", "csv", good + "c9,Bad \"quote,,,,,,x\n", "row 5 (line 6, column"},
		{"field count", "csv", good + "c9,x\n", "row 5 (line 6): 2 fields, but the header has 8 columns"},
		{"duplicate header", "csv", "crm_id,name,name\n", "columns 2 and 3 are both named \"name\""},
		{"missing column", "csv", "crm_id,name\nc1,x\n", "the mapping names columns the file does not have: phone, email"},
		{"jsonl syntax", "jsonl", "{\"crm_id\":\"c1\",\"segment\":\"x\"}\n{\"crm_id\": c2}\n", "malformed JSONL at row 2 (line 2, column"},
		{"jsonl array", "jsonl", "[1,2]\n", "row 1 (line 1"},
		{"xlsx garbage", "xlsx", "PK\x03\x04 not a zip", "not a readable XLSX workbook"},
		{"invalid utf8", "csv", good + "c9,\xff\xfe,,,,,,x\n", "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openStore(t)
			im := &importer.Importer{Log: db, Parser: tracking.New()}
			_, err := im.Import(context.Background(), bytesInput("f", []byte(tc.data)), importer.Options{Source: "crm", Format: tc.format, Mapping: m})
			if err == nil || portrait.ErrorCode(err) != portrait.EINVALID || !strings.Contains(portrait.ErrorMessage(err), tc.want) {
				t.Fatalf("err = %v, want invalid containing %q", err, tc.want)
			}
			if n := len(allEvents(t, db)); n != 0 {
				t.Errorf("%d events written from a malformed file", n)
			}
		})
	}
}

func TestMappingErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"mode: people\nidentity: {user_id: id}", `mode must be "profiles", "events" or "accounts"`},
		{"mode: accounts\nidentity: {user_id: id}", "identity.group_id"},
		{"mode: profiles\nidentity: {user_id: id, group_id: g}", "identity.group_id"},
		{"identity: {}", "identity needs user_id or anonymous_id"},
		{"identity: {user_id: id}\ncolumns: [{column: a, trait: a, kind: colour}]", `unknown kind "colour"`},
		{"identity: {user_id: id}\ncolumsn: []", "field columsn not found"},
		{"mode: events\nidentity: {user_id: id}\nevent: {name: x}", "events mode needs timestamp.column"},
		{"identity: {user_id: id}\nreject: [{when: [{column: a}], reason: r}]", "exactly one of prefix"},
		{"identity: {user_id: id}\nfill: [{field: g, kind: guess}]", "unknown kind"},
	} {
		_, err := importer.ParseMapping([]byte(tc.yaml))
		if err == nil || !strings.Contains(portrait.ErrorMessage(err), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestKeyColumns: with key columns a row keeps its message id across files,
// so a later export with more rows adds only the new ones.
func TestKeyColumns(t *testing.T) {
	m, err := importer.ParseMapping([]byte(crmMapping + "key: [crm_id]\n"))
	if err != nil {
		t.Fatal(err)
	}
	db := openStore(t)
	im := &importer.Importer{Log: db, Parser: tracking.New()}
	first := "crm_id,name,phone,email,id_card,signup,vip,segment\nc1,A,,,,,,gold\n"
	second := first + "c2,B,,,,,,gold\n"
	if _, err := im.Import(context.Background(), bytesInput("a.csv", []byte(first)), importer.Options{Source: "crm", Format: "csv", Mapping: m}); err != nil {
		t.Fatal(err)
	}
	sum, err := im.Import(context.Background(), bytesInput("b.csv", []byte(second)), importer.Options{Source: "crm", Format: "csv", Mapping: m})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 1 || sum.Duplicates != 1 {
		t.Errorf("accepted %d duplicates %d, want 1 and 1", sum.Accepted, sum.Duplicates)
	}
}
