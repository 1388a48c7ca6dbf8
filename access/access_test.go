package access_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
)

func TestMaskValue(t *testing.T) {
	for _, c := range []struct {
		field string
		in    any
		want  any
	}{
		{"phone", "13800138000", "138****8000"},
		{"phone", "+8613800138000", "138****8000"},
		{"mobile", "+86 138-0013-8000", "138****8000"},
		{"phone", "138****8000", "138****8000"}, // idempotent
		{"email", "zhang.san@example.com", "z***@example.com"},
		{"email", "z***@example.com", "z***@example.com"},
		{"id_number", "110105194912312000", "1101**********2000"},
		{"id_number", "1101**********2000", "1101**********2000"},
		{"revenue", 1234.5, "[secret]"},
		{"name", "张三", "[secret]"},
		{"phone", "12", "[secret]"},
		{"email", "no-at-sign", "[secret]"},
	} {
		if got := access.MaskValue(c.field, c.in); got != c.want {
			t.Errorf("MaskValue(%s, %v) = %v, want %v", c.field, c.in, got, c.want)
		}
	}
}

func TestLevelsAndDefaults(t *testing.T) {
	c := &access.Classifier{Schema: func(name string) (string, bool) {
		switch name {
		case "revenue":
			return "confidential", true
		case "phone":
			return "internal", true // an observed trait's first-sight level
		}
		return "", false
	}}
	for _, x := range []struct {
		name string
		want access.Level
	}{{"id_number", access.Secret}, {"phone", access.Confidential}, {"email", access.Confidential},
		{"home_address", access.Confidential}, {"revenue", access.Confidential}} {
		if l, ok := c.Trait(x.name); !ok || l != x.want {
			t.Errorf("%s: %v %v, want %v", x.name, l, ok, x.want)
		}
	}
	if _, ok := c.Trait("favourite_colour"); ok {
		t.Error("an unknown, non-personal name is classified")
	}
	c.Set(access.KindTrait, "phone", access.Secret)
	if l, _ := c.Trait("phone"); l != access.Secret {
		t.Errorf("an explicit level does not win: %v", l)
	}
	if l, ok := c.Identifier("phone"); !ok || l != access.Confidential {
		t.Errorf("identifier phone: %v %v", l, ok)
	}
	if _, ok := c.Identifier("write"); ok {
		t.Error("an unknown identifier type is classified")
	}
	if l, err := access.ParseLevel("机密"); err != nil || l != access.Secret {
		t.Errorf("ParseLevel(机密) = %v, %v", l, err)
	}
	if _, err := access.ParseLevel("top"); err == nil {
		t.Error("ParseLevel accepted top")
	}
}

func TestRoles(t *testing.T) {
	// A key read without its role fails closed: no scope, nothing seen.
	bare := access.PrincipalOf(&portrait.Key{ID: 1, Kind: portrait.KeyAdmin, Name: "ops"})
	if bare.Can("profiles:read") || bare.Sees(access.Internal) {
		t.Errorf("a key without a role: %+v", bare)
	}
	adm := access.PrincipalOf(&portrait.Key{Role: access.RoleAdmin, Clearance: "secret"})
	if !adm.Can("keys:write") || !adm.Sees(access.Secret) {
		t.Errorf("admin: %+v", adm)
	}
	an := access.PrincipalOf(&portrait.Key{Role: access.RoleAnalyst, Clearance: "internal"})
	if !an.Can("segments:write") || an.Can("keys:write") || an.Can("audit:read") || an.Sees(access.Confidential) {
		t.Errorf("analyst: %+v", an)
	}
	au := access.PrincipalOf(&portrait.Key{Role: access.RoleAuditor, Clearance: "public"})
	if !au.Can("audit:read") || au.Can("profiles:read") {
		t.Errorf("auditor: %+v", au)
	}
	if _, err := access.CheckRole(access.RoleCustom, []string{"keys:write"}); err == nil {
		t.Error("a custom role may grant itself keys:write")
	}
	if _, err := access.CheckRole(access.RoleCustom, []string{"profiles:delete"}); err == nil {
		t.Error("an unknown access was accepted")
	}
	if sc, err := access.CheckRole(access.RoleCustom, []string{"segments:read", "profiles:read", "segments:read"}); err != nil || strings.Join(sc, ",") != "profiles:read,segments:read" {
		t.Errorf("custom scopes %v %v", sc, err)
	}
	if _, err := access.CheckRole("root", nil); err == nil {
		t.Error("an unknown role was accepted")
	}
}

// The masker finds classified values in every shape the API uses and
// notes which it masked.
func TestMaskerShapes(t *testing.T) {
	m := &access.Masker{C: &access.Classifier{}, P: access.Principal{Role: access.RoleAnalyst, Clearance: access.Internal}}
	doc := `{"id":"p1","name":"spenders","traits":{"phone":{"value":"+8613800138000","source":"web"},"id_number":{"value":"110105194912312000"},"city":{"value":"杭州"}},
	"identifiers":[{"type":"phone","value":"+8613800138000"},{"type":"user_id","value":"u1"}],
	"events":[{"context":{"externalIds":[{"type":"email","id":"a@b.cn"}]},"traits":{"email":"a@b.cn"}}],
	"matched":{"field":"email","value":"a@b.cn"},"issues":[{"trait":"phone","value":"12345"}],"raw":"{\"phone\":\"13800138000\"}"}`
	out := string(m.MaskJSON([]byte(doc)))
	for _, leak := range []string{"13800138000", "110105194912312000", "a@b.cn", "12345"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q leaks: %s", leak, out)
		}
	}
	for _, want := range []string{`"138****8000"`, `"1101**********2000"`, `"a***@b.cn"`, `"杭州"`, `"u1"`, `"name":"spenders"`, `"raw":"[secret]"`} {
		if !strings.Contains(out, want) {
			t.Errorf("want %s in %s", want, out)
		}
	}
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	seen := map[string]access.Field{}
	for _, f := range m.Seen() {
		seen[f.Name] = f
	}
	if f := seen["id_number"]; f.Level != access.Secret || !f.Masked {
		t.Errorf("id_number seen as %+v", f)
	}
	if f := seen["user_id"]; f.Level != access.Internal || f.Masked {
		t.Errorf("user_id seen as %+v", f)
	}
	// A secret clearance sees everything as it is.
	full := &access.Masker{C: &access.Classifier{}, P: access.Principal{Role: access.RoleAdmin, Clearance: access.Secret}}
	if got := string(full.MaskJSON([]byte(doc))); !strings.Contains(got, "110105194912312000") || !strings.Contains(got, `13800138000\"`) {
		t.Errorf("secret clearance masked: %s", got)
	}
}

// Personal fields are recognised whatever language and case their names
// are written in: a CRM export's 手机号 or 身份证号码, a form's phoneNumber.
// Found by the issue 15 probe: a trait 身份证号 holding an ID number was
// shown in clear to an internal clearance, and so was 手机号, 邮箱, 家庭住址.
func TestChineseAndCamelCaseNames(t *testing.T) {
	c := &access.Classifier{}
	for name, want := range map[string]access.Level{
		"身份证号": access.Secret, "身份证号码": access.Secret, "证件号码": access.Secret, "护照号": access.Secret,
		"idCard": access.Secret, "IDNumber": access.Secret, "passportNo": access.Secret,
		"手机号": access.Confidential, "手机": access.Confidential, "联系电话": access.Confidential, "收货人电话": access.Confidential,
		"邮箱": access.Confidential, "电子邮件": access.Confidential, "邮箱地址": access.Confidential,
		"家庭住址": access.Confidential, "收货地址": access.Confidential,
		"phoneNumber": access.Confidential, "mobilePhone": access.Confidential, "Email-Address": access.Confidential,
		"homeAddress": access.Confidential,
	} {
		if l, ok := c.Trait(name); !ok || l != want {
			t.Errorf("trait %s: %v %v, want %v", name, l, ok, want)
		}
	}
	for _, name := range []string{"城市", "会员等级", "hotelName", "customerName", "备注"} {
		if l, ok := c.Trait(name); ok && l > access.Internal {
			t.Errorf("%s classified %v", name, l)
		}
	}
	m := &access.Masker{C: c, P: access.Principal{Role: access.RoleAnalyst, Clearance: access.Internal}}
	out := string(m.MaskJSON([]byte(`{"traits":{"手机号":"13987654321","身份证号":"110101199003074514","邮箱":"zs2@qq.com","家庭住址":"上海市浦东新区世纪大道1号","城市":"上海市"}}`)))
	for _, leak := range []string{"13987654321", "110101199003074514", "zs2@qq.com", "世纪大道"} {
		if strings.Contains(out, leak) {
			t.Errorf("%s leaks: %s", leak, out)
		}
	}
	for _, want := range []string{`"139****4321"`, `"1101**********4514"`, `"z***@qq.com"`, `"上海市"`} {
		if !strings.Contains(out, want) {
			t.Errorf("want %s in %s", want, out)
		}
	}
}

// A value shows what it is whatever its field is called: the trait schema
// types a field on first sight with it.
func TestLevelOfValue(t *testing.T) {
	for _, c := range []struct {
		v    any
		want access.Level
		ok   bool
	}{
		{"110101199003074514", access.Secret, true},
		{"11010119900307451X", 0, false}, // wrong check character
		{"110101199003074515", 0, false},
		{"123456789012345678", 0, false}, // an order number
		{"13600002222", access.Confidential, true},
		{"+86 136-0000-2222", access.Confidential, true},
		{"12600002222", 0, false},
		{"zs2@qq.com", access.Confidential, true},
		{"a@b", 0, false},
		{"上海市", 0, false},
		{13600002222.0, 0, false},
	} {
		if l, ok := access.LevelOfValue(c.v); ok != c.ok || l != c.want {
			t.Errorf("LevelOfValue(%v) = %v %v, want %v %v", c.v, l, ok, c.want, c.ok)
		}
	}
}

// A linkage candidate shows its pair's fields side by side ({field, a,
// b}): both sides are masked like the field. Found by the issue 15 probe:
// an analyst (internal) read both phones and addresses of every pair.
func TestMaskerLinkageComparisons(t *testing.T) {
	m := &access.Masker{C: &access.Classifier{}, P: access.Principal{Role: access.RoleAnalyst, Clearance: access.Internal}}
	doc := `{"candidates":[{"a":{"type":"user_id","value":"ww2"},"b":{"type":"user_id","value":"ww1"},"fields":[
	{"field":"name","a":"王五","b":"王五","level":0},{"field":"address","a":"上海市徐汇区漕溪北路100号","b":"上海市徐汇区漕溪北路100号","level":0},
	{"field":"phone","a":"+8613600001112","b":"+8613600001111","level":1},{"field":"id_card","a":"310104198001011235","b":"","level":0}]}]}`
	out := string(m.MaskJSON([]byte(doc)))
	for _, leak := range []string{"13600001112", "13600001111", "漕溪北路", "310104198001011235"} {
		if strings.Contains(out, leak) {
			t.Errorf("%s leaks: %s", leak, out)
		}
	}
	for _, want := range []string{`"a":"136****1112"`, `"b":"136****1111"`, `"a":"王五"`, `"value":"ww2"`, `"level":1`} {
		if !strings.Contains(out, want) {
			t.Errorf("want %s in %s", want, out)
		}
	}
}

// A free text quoting a phone, an ID number or an email (a note, an
// address line, a field typed internal) is masked where it quotes them,
// above the principal's clearance; numbers inside words and other digits
// are left alone. Found by the issue 15 probe: an order's note
// "请联系13533334444" reached an analyst (internal) in the timeline.
func TestMaskerScrubsFreeText(t *testing.T) {
	c := &access.Classifier{Schema: func(name string) (string, bool) {
		if name == "remark" {
			return "internal", true
		}
		return "", false
	}}
	doc := `{"events":[{"properties":{"note":"请联系13533334444，或发邮件到 li.si@example.cn。","order":"A13912345678B","ref":"+8613700001111",
	"sku":"2026120612345678901","remark":"身份证110101199003074514已核验"}}],"traits":{"remark":"tel:13811112222"}}`
	an := &access.Masker{C: c, P: access.Principal{Role: access.RoleAnalyst, Clearance: access.Internal}}
	out := string(an.MaskJSON([]byte(doc)))
	for _, leak := range []string{"13533334444", "li.si@example.cn", "13700001111", "110101199003074514", "13811112222"} {
		if strings.Contains(out, leak) {
			t.Errorf("%s leaks to an internal clearance: %s", leak, out)
		}
	}
	for _, want := range []string{"请联系135****4444，或发邮件到 l***@example.cn。", `"A13912345678B"`, `"+137****1111"`, `"2026120612345678901"`, "身份证1101**********4514已核验", `"tel:138****2222"`} {
		if !strings.Contains(out, want) {
			t.Errorf("want %s in %s", want, out)
		}
	}
	noted := false
	for _, f := range an.Seen() {
		noted = noted || f.Name == "free_text" && f.Masked && f.Level == access.Secret
	}
	if !noted {
		t.Errorf("the audit does not note the masked free text: %+v", an.Seen())
	}
	// Confidential sees the phone and the email, not the ID number.
	sales := &access.Masker{C: c, P: access.Principal{Role: access.RoleSales, Clearance: access.Confidential}}
	out = string(sales.MaskJSON([]byte(doc)))
	if !strings.Contains(out, "13533334444") || !strings.Contains(out, "li.si@example.cn") || strings.Contains(out, "110101199003074514") {
		t.Errorf("confidential clearance: %s", out)
	}
	// Export rows: the same.
	row := []string{"p1", "请联系13533334444"}
	an.MaskRow([]string{"id", "备注"}, row)
	if row[1] != "请联系135****4444" {
		t.Errorf("export row: %q", row[1])
	}
}

// Phones written with separators in a free text (139-1234-5678, +86 139
// 1234 5678, a landline (010) 6552-1234) were not found by the free-text
// masker: they reached an internal clearance in clear. Dates, amounts,
// order numbers and runs of groups are not phones and stay as written.
func TestMaskerScrubsSeparatedPhones(t *testing.T) {
	an := &access.Masker{C: &access.Classifier{}, P: access.Principal{Role: access.RoleAnalyst, Clearance: access.Internal}}
	for in, want := range map[string]string{
		"请联系139-1234-5678":           "请联系139****5678",
		"call 139 1234 5678 today":   "call 139****5678 today",
		"+86 139 1234 5678":          "139****5678",
		"电话：+86-139-1234-5678。":      "电话：139****5678。",
		"(+86) 139 1234 5678":        "139****5678",
		"0086 139-1234-5678":         "139****5678",
		"86-139-1234-5678":           "139****5678",
		"手机139-12345678":             "手机139****5678",
		"座机(010) 6552-1234转8":        "座机010****1234转8",
		"座机 010-65521234":            "座机 010****1234",
		"tel 0755 8888 8888, ask Li": "tel 075****8888, ask Li",
		"(0571)8765432":              "057****5432",
	} {
		doc, _ := json.Marshal(map[string]any{"properties": map[string]any{"note": in}})
		var got struct {
			Properties struct{ Note string } `json:"properties"`
		}
		if err := json.Unmarshal(an.MaskJSON(doc), &got); err != nil {
			t.Fatal(err)
		}
		if got.Properties.Note != want {
			t.Errorf("%q: masked to %q, want %q", in, got.Properties.Note, want)
		}
	}
	// Not phones, whatever the clearance.
	for _, in := range []string{
		"交付 2026-12-06，金额 1,234,567.00 元，订单 SO-2026-1206-0001",
		"order A-139-1234-5678 and 2026-12-06 13:45-14:30",
		"合同 139-1234-5678-9 号；批次 12 139 1234 5678",
		"amount 13,912,345,678.00; ISBN 978-7-111-12345-6; 1391234 5678",
		"ref 0101-2345-6789; 2026-01-06 010-1234567; version 1.139.1234.5678",
		"+86 021 6552 1234 and 139 1234 56789 and 139.1234.5678",
	} {
		doc, _ := json.Marshal(map[string]any{"properties": map[string]any{"note": in}})
		out := an.MaskJSON(doc)
		var got struct {
			Properties struct{ Note string } `json:"properties"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if got.Properties.Note != in {
			t.Errorf("not a phone, masked: %q became %q", in, got.Properties.Note)
		}
	}
	// A confidential clearance reads them as written.
	sales := &access.Masker{C: &access.Classifier{}, P: access.Principal{Role: access.RoleSales, Clearance: access.Confidential}}
	doc := []byte(`{"properties":{"note":"请联系139-1234-5678"}}`)
	if out := string(sales.MaskJSON(doc)); !strings.Contains(out, "139-1234-5678") {
		t.Errorf("confidential clearance: %s", out)
	}
}
