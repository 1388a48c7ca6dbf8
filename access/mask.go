package access

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Classifier knows the level of every trait and identifier type: explicit
// settings (changed through the API) first, then the trait schema, then
// defaults by name (ID numbers secret; phone, email, address confidential).
type Classifier struct {
	// Schema returns a trait's classification from the trait schema
	// (traits.Schema.Lookup), when the trait is known there.
	Schema func(name string) (class string, ok bool)

	mu  sync.RWMutex
	set map[string]Level // "trait:NAME" or "id:TYPE"
}

// Setting kinds.
const (
	KindTrait      = "trait"
	KindIdentifier = "identifier"
)

func settingKey(kind, name string) string {
	if kind == KindIdentifier {
		return "id:" + name
	}
	return "trait:" + name
}

// Set records an explicit level (loaded at start, or changed by an admin).
func (c *Classifier) Set(kind, name string, l Level) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set == nil {
		c.set = map[string]Level{}
	}
	c.set[settingKey(kind, name)] = l
}

// Setting is one explicit level.
type Setting struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Level string `json:"level"`
}

// Settings lists the explicit levels.
func (c *Classifier) Settings() []Setting {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Setting, 0, len(c.set))
	for k, l := range c.set {
		kind, name, _ := strings.Cut(k, ":")
		if kind == "id" {
			kind = KindIdentifier
		}
		out = append(out, Setting{Kind: kind, Name: name, Level: l.String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind+out[i].Name < out[j].Kind+out[j].Name })
	return out
}

func (c *Classifier) explicit(key string) (Level, bool) {
	if c == nil {
		return 0, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	l, ok := c.set[key]
	return l, ok
}

// Personal-data kinds, which decide the mask's shape.
const (
	shapePhone = "phone"
	shapeEmail = "email"
	shapeID    = "id"
)

// shapeOf names what kind of personal value a field holds, from its name:
// English words in snake_case, camelCase, kebab-case or spaced
// (id_number, phoneNumber, home-address), and the Chinese names a CRM
// export or a form uses (手机号, 身份证号码, 邮箱, 家庭住址, 收货人电话).
func shapeOf(name string) string {
	n := wordsOf(name)
	has := func(words ...string) bool {
		for _, w := range words {
			if hasWord(n, w) {
				return true
			}
		}
		return false
	}
	// Chinese names are compounds without separators: a word anywhere in
	// the name says what it holds (收货人电话 is a phone).
	ascii := isASCII(name)
	zh := func(words ...string) bool {
		if ascii {
			return false
		}
		for _, w := range words {
			if strings.Contains(name, w) {
				return true
			}
		}
		return false
	}
	switch {
	case has("id_number", "idnumber", "id_card", "idcard", "id_no", "idno", "passport", "passport_no", "national_id", "identity_card", "sfz"),
		zh("身份证", "证件号", "身份号", "护照"):
		return shapeID
	case has("phone", "mobile", "tel", "cellphone", "telephone", "phonenumber", "mobilephone"), zh("手机", "电话", "座机", "联系方式"):
		return shapePhone
	case has("email", "mail", "emailaddress"), zh("邮箱", "邮件", "电邮"):
		return shapeEmail
	case has("address", "street"), zh("地址", "住址"):
		return "address"
	}
	return ""
}

// hasWord reports whether w is one of n's words (n == w, or w between
// underscores or the ends), without building strings: every key of every
// masked response asks.
func hasWord(n, w string) bool {
	for i := 0; i+len(w) <= len(n); {
		j := strings.Index(n[i:], w)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(w)
		if (j == 0 || n[j-1] == '_') && (end == len(n) || n[end] == '_') {
			return true
		}
		i = j + 1
	}
	return false
}

// wordsOf lower-cases a field name with its words joined by "_":
// phoneNumber, Phone-Number and "phone number" all read phone_number.
func wordsOf(name string) string {
	if strings.IndexFunc(name, func(r rune) bool { return r >= 'A' && r <= 'Z' || r == '-' || r == ' ' || r == '.' }) < 0 {
		return name // already lower-case snake_case (most names): no copy
	}
	var b strings.Builder
	lowerBefore := false // the previous character was a lower-case letter or a digit
	for _, r := range name {
		lower := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		switch {
		case r == '-' || r == ' ' || r == '.':
			r = '_'
		case r >= 'A' && r <= 'Z':
			if lowerBefore {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
		lowerBefore = lower
	}
	return b.String()
}

// defaultLevel is the level of a name with no explicit setting and no
// schema entry; ok is false when the name is not recognisably personal.
func defaultLevel(name string) (Level, bool) {
	switch shapeOf(name) {
	case shapeID:
		return Secret, true
	case shapePhone, shapeEmail, "address":
		return Confidential, true
	}
	switch name {
	case "user_id", "anonymous_id":
		return Internal, true
	}
	return 0, false
}

// DefaultLevel is the level a name gets by default, from what it says it
// holds (an ID number secret; phone, email, address confidential), in
// English or Chinese; ok is false when the name says nothing personal.
// The trait schema types a trait on first sight with it.
func DefaultLevel(name string) (Level, bool) { return defaultLevel(name) }

// LevelOfValue is the level a value shows it needs whatever its field is
// called: a mainland resident ID number (18 characters, the check
// character right) is secret, a mainland mobile number or an email
// address confidential. A trait named "contact" or "备注1" holding
// 13800138000 is typed by it on first sight.
func LevelOfValue(v any) (Level, bool) {
	s, ok := v.(string)
	if !ok {
		return 0, false
	}
	s = strings.TrimSpace(s)
	switch {
	case residentID(s):
		return Secret, true
	case mobileNumber(s), emailAddress(s):
		return Confidential, true
	}
	return 0, false
}

// residentID: 17 digits and a check character (GB 11643-1999, ISO 7064
// MOD 11-2), so that an order number of 18 digits is not taken for one
// ten times out of eleven.
func residentID(s string) bool {
	if len(s) != 18 {
		return false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		sum += int(s[i]-'0') * ((1 << (17 - i)) % 11)
	}
	check := "10X98765432"[sum%11]
	return s[17] == check || check == 'X' && s[17] == 'x'
}

// mobileNumber: a mainland mobile number, 11 digits from 13 to 19, with
// or without +86 and separators.
func mobileNumber(s string) bool {
	if len(s) > 24 || strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r == '+' || r == ' ' || r == '-')
	}) {
		return false
	}
	d := phoneDigits(s)
	return len(d) == 11 && d[0] == '1' && d[1] >= '3' && d[1] <= '9'
}

// emailAddress: one @ with something before it and a dotted domain after
// it, no spaces.
func emailAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at < 1 || at != strings.LastIndexByte(s, '@') || len(s) > 254 || strings.ContainsAny(s, " \t\n<>,;") {
		return false
	}
	dom := s[at+1:]
	dot := strings.LastIndexByte(dom, '.')
	return dot > 0 && dot < len(dom)-2
}

// Trait returns a trait's level and whether the name is classified at all
// (unknown names are left alone by the masker).
func (c *Classifier) Trait(name string) (Level, bool) {
	if l, ok := c.explicit(settingKey(KindTrait, name)); ok {
		return l, true
	}
	// Personal identifiers are at least their default level, whatever an
	// observed trait's first-sight classification said.
	dl, dok := defaultLevel(name)
	if c != nil && c.Schema != nil {
		if cl, ok := c.Schema(name); ok {
			if l, err := ParseLevel(cl); err == nil {
				if dok && dl > l {
					return dl, true
				}
				return l, true
			}
		}
	}
	return dl, dok
}

// Identifier returns an identifier type's level; ok is false for a type
// that is neither set nor recognisably personal (it is then not masked).
func (c *Classifier) Identifier(typ string) (Level, bool) {
	if l, ok := c.explicit(settingKey(KindIdentifier, typ)); ok {
		return l, true
	}
	if l, ok := defaultLevel(typ); ok {
		return l, true
	}
	return 0, false
}

// Identifying reports whether field is named as a personal identifier
// whose every value identifies someone (an ID number, a phone, an email,
// an address), so that even a number compared with it is one of its
// values, not a threshold.
func Identifying(field string) bool { return shapeOf(field) != "" }

// MaskValue masks one value of field: phone 138****8000, email
// z***@example.com, ID 1101**********1234, anything else "[secret]".
// It is idempotent: masking a masked value gives the same mask.
func MaskValue(field string, v any) any {
	s, ok := v.(string)
	if !ok {
		return "[secret]"
	}
	switch shapeOf(field) {
	case shapePhone:
		if d := phoneDigits(s); len(d) >= 7 {
			return d[:3] + "****" + d[len(d)-4:]
		}
	case shapeEmail:
		if at := strings.LastIndexByte(s, '@'); at > 0 {
			first, _ := utf8.DecodeRuneInString(s)
			return string(first) + "***" + s[at:]
		}
	case shapeID:
		if len(s) >= 10 && isASCII(s) {
			return s[:4] + strings.Repeat("*", len(s)-8) + s[len(s)-4:]
		}
	}
	return "[secret]"
}

// phoneDigits keeps a phone's digits without China's country code, so that
// "+86 138 0013 8000" masks as 138****8000 like "13800138000" does; a
// masked phone (138****8000) is returned as it is.
func phoneDigits(s string) string {
	if strings.Contains(s, "****") {
		if i := strings.Index(s, "****"); i >= 3 && len(s)-i-4 >= 4 {
			return s[i-3:i] + "0" + s[len(s)-4:] // masks to itself
		}
	}
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	d := b.String()
	if len(d) == 13 && strings.HasPrefix(d, "86") {
		d = d[2:]
	} else if len(d) == 15 && strings.HasPrefix(d, "0086") {
		d = d[4:]
	}
	return d
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Masker masks one response for one principal and notes the classified
// fields it carried, for the audit record.
type Masker struct {
	C *Classifier
	P Principal

	seen map[string]seenField
}

type seenField struct {
	level  Level
	masked bool
}

// Field is a classified field a masker saw.
type Field struct {
	Name   string
	Level  Level
	Masked bool
}

// Seen lists the classified (above public) fields seen so far.
func (m *Masker) Seen() []Field {
	out := make([]Field, 0, len(m.seen))
	for n, f := range m.seen {
		out = append(out, Field{Name: n, Level: f.level, Masked: f.masked})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// value masks v as a value of name at level l when the principal may not
// see it.
func (m *Masker) value(name string, l Level, v any) any {
	if l > Public && v != nil {
		if m.seen == nil {
			m.seen = map[string]seenField{}
		}
		f := m.seen[name]
		f.level = l
		if !m.P.Sees(l) {
			f.masked = true
		}
		m.seen[name] = f
	}
	if v == nil || m.P.Sees(l) {
		if s, ok := v.(string); ok {
			return m.scrub(s) // a visible note may quote a hidden phone
		}
		return v
	}
	return MaskValue(name, v)
}

// scrub masks the personal values a free text quotes, above the
// principal's clearance: a mainland mobile number (11 digits from 13 to
// 19, alone or after 86), a resident ID number (its check character
// right) and an email address, found in a note, a comment, an address
// line or any field whose name says nothing ("请联系13533334444"). The
// shapes are the ones LevelOfValue knows, and phones written with
// separators (139-1234-5678, +86 139 1234 5678, (010) 6552-1234: see
// separatedPhone).
func (m *Masker) scrub(s string) string {
	if m.P.Sees(Secret) || !quotesPersonal(s) {
		return s
	}
	var b strings.Builder
	masked := false
	for i := 0; i < len(s); {
		c := s[i]
		// (only where one can start: a mobile's 1, a landline's 0, 86 or
		// 0086, + and (; other digit runs are not asked)
		if c == '+' || c == '(' || c == '0' || c == '1' || c == '8' {
			// a phone written with separators: 139-1234-5678, +86 139
			// 1234 5678, (010) 6552-1234
			if end, digits := separatedPhone(s, i); end > 0 {
				if !m.P.Sees(Confidential) {
					b.WriteString(MaskValue("phone", digits).(string))
					m.note("free_text", Confidential)
					masked = true
				} else {
					b.WriteString(s[i:end])
				}
				i = end
				continue
			}
		}
		switch {
		case isDigit(c):
			j := i
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			if j == i+17 && j < len(s) && (s[j] == 'X' || s[j] == 'x') {
				j++
			}
			run := s[i:j]
			var lvl Level
			var shape string
			// A run inside a word (an id such as ab13912345678cd) is not
			// a number someone wrote.
			inWord := i > 0 && alnum(s[i-1]) || j < len(s) && alnum(s[j])
			switch d := strings.TrimPrefix(run, "86"); {
			case inWord:
			case residentID(run):
				lvl, shape = Secret, "id_number"
			case len(run) == 11 && mobileNumber(run), len(run) == 13 && len(d) == 11 && mobileNumber(d):
				lvl, shape = Confidential, "phone"
			}
			if shape != "" && !m.P.Sees(lvl) {
				b.WriteString(MaskValue(shape, run).(string))
				m.note("free_text", lvl)
				masked = true
			} else {
				b.WriteString(run)
			}
			i = j
		case c == '@':
			// the local part was copied already: take it back
			out := b.String()
			k := len(out)
			for k > 0 && emailLocal(out[k-1]) {
				k--
			}
			j := i + 1
			for j < len(s) && (isDigit(s[j]) || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] == '.' || s[j] == '-') {
				j++
			}
			addr := out[k:] + s[i:j]
			if k < len(out) && emailAddress(strings.TrimRight(addr, ".")) && !m.P.Sees(Confidential) {
				b.Reset()
				b.WriteString(out[:k])
				b.WriteString(MaskValue("email", addr).(string))
				m.note("free_text", Confidential)
				masked = true
			} else {
				b.WriteString(s[i:j])
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	if !masked {
		return s
	}
	return b.String()
}

// separatedPhone reads a phone number written with separators (one space
// or one hyphen, the same between every group) at s[i:]: a mainland
// mobile in groups of 3-4-4 or 3-8, after +86, 0086, 86 or (+86) and a
// separator or not (139-1234-5678, 139 1234 5678, +86 139 1234 5678), or
// a landline whose area code is set apart (010-6552-1234, (010)
// 6552-1234, 0755 8888 8888: 010 and 02x with 8 digits, other 0xxx with
// 7 or 8, the first not 0 or 1). It gives the end of the number and its
// digits (without the country code), or 0. A number that goes on (a
// digit, a letter, a separator and a digit after it) or that follows a
// letter or a digit and a separator (an order id A-139-1234-5678, a run of
// groups) is not one: dates (2026-12-06), amounts (1,234,567.00) and
// order numbers do not have these shapes. Numbers written whole are
// scrub's digit runs.
func separatedPhone(s string, i int) (int, string) {
	if i > 0 && alnum(s[i-1]) {
		return 0, ""
	}
	if i > 1 && (s[i-1] == '-' || s[i-1] == '_' || s[i-1] == '/' || s[i-1] == '.' || s[i-1] == ' ' && isDigit(s[i-2])) && alnum(s[i-2]) {
		return 0, ""
	}
	var buf [16]byte
	d := buf[:0]
	j := i
	// group reads n digits at j.
	group := func(n int) bool {
		if j+n > len(s) {
			return false
		}
		for k := j; k < j+n; k++ {
			if !isDigit(s[k]) {
				return false
			}
		}
		d = append(d, s[j:j+n]...)
		j += n
		return true
	}
	isSep := func(k int) bool { return k < len(s) && (s[k] == ' ' || s[k] == '-') }
	// ends: the number stops at k (not 139-1234-5678-9, 139 1234 56789,
	// 139-1234-5678.5 or 139 1234 5678,001)
	ends := func(k int) bool {
		if k == len(s) {
			return true
		}
		if alnum(s[k]) {
			return false
		}
		return !(strings.IndexByte(" -.,", s[k]) >= 0 && k+1 < len(s) && isDigit(s[k+1]))
	}
	// country code
	cc := false
	for _, p := range []string{"(+86)", "+86", "0086"} {
		if strings.HasPrefix(s[j:], p) {
			j += len(p)
			cc = true
			break
		}
	}
	if cc {
		if j < len(s) && s[j] == ' ' || isSep(j) {
			j++
		}
	} else if strings.HasPrefix(s[j:], "86") && isSep(j+2) {
		j += 3
		cc = true
	}
	if j >= len(s) {
		return 0, ""
	}
	// a mobile: 1[3-9]x then a separator and 4-4 or 8 digits
	if s[j] == '1' && group(3) && d[1] >= '3' && d[1] <= '9' && isSep(j) {
		sep := s[j]
		j++
		if group(4) {
			if j < len(s) && s[j] == sep {
				j++
				if group(4) && ends(j) {
					return j, string(d)
				}
			} else if group(4) && ends(j) {
				return j, string(d) // 139-12345678
			}
		}
		return 0, ""
	}
	if cc {
		return 0, "" // a landline after +86 is written without its 0
	}
	// a landline: (0xx) or 0xx and a separator, then 7-8 digits
	d, j = d[:0], i
	paren := s[j] == '('
	if paren {
		j++
	}
	if j+3 > len(s) || s[j] != '0' || s[j+1] < '1' {
		return 0, ""
	}
	area := 4
	if s[j+1] == '1' && s[j+2] == '0' || s[j+1] == '2' {
		area = 3
	}
	if !group(area) {
		return 0, ""
	}
	if paren {
		if j >= len(s) || s[j] != ')' {
			return 0, ""
		}
		j++
		if j < len(s) && s[j] == ' ' {
			j++
		}
	} else if isSep(j) {
		j++
	} else {
		return 0, ""
	}
	if j >= len(s) || s[j] < '2' || s[j] > '9' {
		return 0, ""
	}
	start := len(d)
	for j < len(s) && isDigit(s[j]) && len(d)-start < 8 {
		d = append(d, s[j])
		j++
	}
	if n := len(d) - start; (n == 3 || n == 4) && isSep(j) && j+1 < len(s) && isDigit(s[j+1]) {
		j++
		if !group(4) {
			return 0, ""
		}
	}
	if n := len(d) - start; (n == 8 || n == 7 && area == 4) && ends(j) {
		return j, string(d)
	}
	return 0, ""
}

// quotesPersonal is scrub's cheap test: an @ or eleven digits.
func quotesPersonal(s string) bool {
	if strings.IndexByte(s, '@') >= 0 {
		return true
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			if n++; n >= 11 {
				return true
			}
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func alnum(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func emailLocal(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("._%+-", c) >= 0
}

// note records a classified value seen in a response, for the audit.
func (m *Masker) note(name string, l Level) {
	if m.seen == nil {
		m.seen = map[string]seenField{}
	}
	f := m.seen[name]
	if l > f.level {
		f.level = l
	}
	f.masked = true
	m.seen[name] = f
}

// structural keys are the API's own field names, never trait names, when
// they appear outside a traits or properties object.
var structural = map[string]bool{
	"id": true, "name": true, "type": true, "value": true, "kind": true, "source": true, "time": true, "at": true,
	"since": true, "message_id": true, "first_seen": true, "last_seen": true, "created_at": true, "updated_at": true,
	"field": true, "trait": true, "status": true, "label": true, "key": true, "count": true, "event": true,
	"profile_id": true, "segment_id": true, "reason": true, "priority": true, "role": true, "clearance": true,
}

// traitContainers hold trait-named keys: every key in them is a field.
var traitContainers = map[string]bool{"traits": true, "properties": true, "values": true}

// Walk masks a decoded JSON value in place and returns it.
func (m *Masker) Walk(v any) any { return m.walk(v, false) }

func (m *Masker) walk(v any, inTraits bool) any {
	switch x := v.(type) {
	case []any:
		for i := range x {
			x[i] = m.walk(x[i], inTraits)
		}
		return x
	case string:
		return m.scrub(x)
	case map[string]any:
		m.shapes(x)
		for k, val := range x {
			if !inTraits && structural[k] {
				if obj, ok := val.(map[string]any); ok {
					x[k] = m.walk(obj, false)
				} else if arr, ok := val.([]any); ok {
					x[k] = m.walk(arr, false)
				}
				continue
			}
			if s, ok := val.(string); ok && k == "raw" && !inTraits {
				// An unparsed payload (quarantine) can carry any personal
				// value: only a secret clearance reads it.
				x[k] = m.value("raw", Secret, s)
				continue
			}
			if l, ok := m.C.Trait(k); ok {
				if obj, isObj := val.(map[string]any); isObj {
					if inner, has := obj["value"]; has {
						obj["value"] = m.value(k, l, inner) // a trait with provenance
						continue
					}
				}
				x[k] = m.value(k, l, val)
				continue
			}
			x[k] = m.walk(val, traitContainers[k])
		}
		return x
	}
	return v
}

// shapes masks the API's typed pairs: identifiers {type, value},
// external ids {type, id}, search matches {field, value}, trait issues
// {trait, value}, traits listed with their provenance {name, value} (the
// 360 view), linkage comparisons {field, a, b}.
func (m *Masker) shapes(x map[string]any) {
	if typ, ok := x["type"].(string); ok {
		if l, ok := m.C.Identifier(typ); ok {
			for _, k := range []string{"value", "id"} {
				if s, ok := x[k].(string); ok {
					x[k] = m.value(typ, l, s)
				}
			}
		}
	}
	for _, fk := range []string{"field", "trait", "name"} {
		if name, ok := x[fk].(string); ok {
			l, known := m.C.Trait(name)
			if !known {
				l, known = m.C.Identifier(name)
			}
			if known {
				// "a" and "b": a linkage candidate's field compared side
				// by side ({field, a, b, level}).
				for _, vk := range []string{"value", "a", "b"} {
					if v, ok := x[vk]; ok {
						x[vk] = m.value(name, l, v)
					}
				}
			}
		}
	}
}

// MaskJSON masks a JSON document; a body that is not JSON is returned as
// it is (errors, empty bodies).
func (m *Masker) MaskJSON(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	v = m.Walk(v)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return body
	}
	return b.Bytes()
}

// MaskRow masks a table row whose columns are named by header (exports).
func (m *Masker) MaskRow(header, row []string) {
	for i, name := range header {
		if i >= len(row) || row[i] == "" {
			continue
		}
		l, ok := m.C.Trait(name)
		if !ok {
			l, ok = m.C.Identifier(name)
		}
		if ok {
			row[i], _ = m.value(name, l, row[i]).(string)
		} else {
			row[i] = m.scrub(row[i])
		}
	}
}

// SecretTrait reports whether a trait (or event field) of this name is at
// secret level, the level whose values are sealed at rest (internal/datakey).
func (c *Classifier) SecretTrait(name string) bool {
	l, ok := c.Trait(name)
	return ok && l >= Secret
}

// SecretIdentifier reports whether an identifier type is at secret level.
func (c *Classifier) SecretIdentifier(typ string) bool {
	l, ok := c.Identifier(typ)
	return ok && l >= Secret
}
