package importer

import (
	"strings"

	"github.com/portrait-cdp/portrait"
)

// InferMapping builds a profiles-mode mapping from a file's header, for
// imports without a mapping file: every column becomes a trait of the same
// name, cleaned by what its name says it holds, and the person is
// identified by the first column named like a customer id.
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
	m := &Mapping{Mode: ModeProfiles}
	for _, c := range rd.Header().Names() {
		key := strings.ToLower(strings.NewReplacer(" ", "_", "-", "_").Replace(c))
		switch key {
		case "user_id", "userid", "customer_id", "customerid", "id", "crm_id":
			if m.Identity.UserID == "" {
				m.Identity.UserID = c
				continue
			}
		}
		m.Columns = append(m.Columns, Column{Column: c, Trait: key, Kind: kindFor(key)})
	}
	if m.Identity.UserID == "" {
		return nil, portrait.Errorf(portrait.EINVALID, "%s has no user_id, customer_id or id column to identify people by; write a mapping (--map, see docs/import.md)", in.Name)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
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
	case name == "province":
		return KindProvince
	case name == "city":
		return KindCity
	}
	return KindText
}
