package importer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/portrait-cdp/portrait"
)

// InferMapping builds a profiles-mode mapping from a file's header, for
// imports without a mapping file: every column becomes a trait of the same
// name, cleaned by what its name says it holds, and the person is
// identified by the first column named like a customer id.
// ErrNoIdentity is the cause of InferMapping's error for a file without an
// identifying column: the command line and the API each say how to give a
// mapping in their own terms.
var ErrNoIdentity = errors.New("no identifying column")

func InferMapping(in Input, format string) (*Mapping, error) {
	f, err := in.Open()
	if err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "cannot open %s: %v", in.Name, err)
	}
	defer f.Close()
	rd, err := NewReader(format, f, "")
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	if !rd.Fixed() {
		// A JSONL header is only known row by row.
		if _, err := rd.Next(); err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "%s: a JSONL import without a mapping needs a first row to read the field names from", in.Name)
		}
	}
	m := &Mapping{Mode: ModeProfiles, inferred: true}
	for _, c := range rd.Header().Names() {
		key := strings.ToLower(strings.NewReplacer(" ", "_", "-", "_").Replace(c))
		switch key {
		case "user_id", "userid", "customer_id", "customerid", "id", "crm_id":
			if m.Identity.UserID == "" {
				m.Identity.UserID = c
				continue
			}
		}
		trait := key
		if alias, ok := traitAliases[key]; ok && !m.hasTrait(alias) {
			trait = alias // the identity graph knows phone, not 手机
		}
		m.Columns = append(m.Columns, Column{Column: c, Trait: trait, Kind: kindFor(trait)})
	}
	if m.Identity.UserID == "" && !m.hasIdentifierColumn() {
		return nil, &portrait.Error{Code: portrait.EINVALID, Err: ErrNoIdentity,
			Message: fmt.Sprintf("%s has no column to identify people by (user_id, customer_id, id, or an identifier such as %s); give a mapping (docs/import.md)", in.Name, strings.Join(IdentifierTraits, ", "))}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// traitAliases are the usual other names of the identifier traits (and
// of gender), so that a file without a mapping is identified by them.
var traitAliases = map[string]string{
	"mobile": "phone", "mobile_phone": "phone", "cellphone": "phone", "telephone": "phone", "tel": "phone",
	"手机": "phone", "手机号": "phone", "手机号码": "phone", "电话": "phone", "联系电话": "phone",
	"e_mail": "email", "mail": "email", "邮箱": "email", "电子邮箱": "email", "电子邮件": "email",
	"性别": "gender", "sex": "gender",
}

func (m *Mapping) hasTrait(name string) bool {
	for _, c := range m.Columns {
		if c.Trait == name {
			return true
		}
	}
	return false
}

func kindFor(name string) string {
	switch {
	case name == "email" || strings.HasSuffix(name, "_email"):
		return KindEmail
	case name == "phone" || name == "mobile" || strings.HasSuffix(name, "_phone"):
		return KindPhone
	case name == "id_card" || name == "id_number":
		return KindIDCard
	case name == "uscc":
		return KindUSCC
	case name == "name" || name == "first_name" || name == "last_name" || name == "given_name" || name == "surname":
		return KindName
	case name == "birthday" || name == "birth_date" || strings.HasSuffix(name, "_date"):
		return KindDate
	case name == "gender" || name == "sex":
		return KindGender
	case name == "province":
		return KindProvince
	case name == "city":
		return KindCity
	}
	return KindText
}
