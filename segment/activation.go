package segment

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode"
)

// HashIdentifier is an identifier as advertising platforms match it: the
// lower-case hex SHA-256 of the phone in E.164 form ("+8613800138000") or
// of the trimmed, lower-case email. v should already be standardised (the
// identity graph stores it so); what is done here only makes the hash
// independent of stray spaces, case and phone punctuation.
//
// Platforms differ on the phone's plus sign: Google Customer Match hashes
// E.164 with it, Meta's Custom Audiences without. This is the E.164 form;
// the documentation (docs/insight.md) says so.
func HashIdentifier(typ, v string) string {
	sum := sha256.Sum256([]byte(ActivationForm(typ, v)))
	return hex.EncodeToString(sum[:])
}

// ActivationForm is the text HashIdentifier hashes.
func ActivationForm(typ, v string) string {
	v = strings.TrimSpace(v)
	switch typ {
	case "email":
		return strings.ToLower(v)
	case "phone":
		var b strings.Builder
		for _, r := range v {
			if unicode.IsDigit(r) {
				b.WriteRune(r)
			}
		}
		return "+" + b.String()
	}
	return v
}
