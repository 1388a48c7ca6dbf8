package clean

import (
	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
)

// Identifier puts an identifier value in the one form the identity graph
// keys on, so "0086-138 0013 8000" and "+8613800138000" are one phone. It
// reports false for a value that cannot be cleaned. Serve, search and the
// tests all use this one standardiser, so they key identifiers alike.
func Identifier(typ, v string) (string, bool) {
	var out string
	var err error
	switch typ {
	case portrait.IDEmail:
		out, err = Email(v)
	case portrait.IDPhone:
		out, err = Phone(v, "CN")
	case "id_card":
		out, err = IDCardNumber(v)
	default:
		return identity.DefaultNormalize(typ, v)
	}
	return out, err == nil
}
