package clean

import (
	"net/mail"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Email trims, NFKC-normalises (full-width ＠ and letters become ASCII) and
// lower-cases an email address, then validates it: net/mail must parse it as
// a bare address, and it must have exactly one @, a non-empty local part, a
// dot inside the domain, and no spaces. The whole address is lower-cased:
// RFC 5321 lets the local part be case-sensitive, but no mainstream mailbox
// provider treats it so, and case variants of one address would otherwise
// count as different identities.
func Email(raw string) (string, error) {
	s := strings.TrimSpace(norm.NFKC.String(raw))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "mailto:"), "MAILTO:")
	s = strings.ToLower(s)
	if s == "" {
		return "", invalid("email", raw, "empty")
	}
	if len(s) > 254 {
		return "", invalid("email", raw, "longer than 254 characters")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", invalid("email", raw, "contains a space or control character")
		}
	}
	if strings.Count(s, "@") != 1 {
		return "", invalid("email", raw, "must contain exactly one @")
	}
	local, domain, _ := strings.Cut(s, "@")
	if local == "" {
		return "", invalid("email", raw, "empty local part")
	}
	if len(local) > 64 {
		return "", invalid("email", raw, "local part longer than 64 characters")
	}
	dot := strings.Index(domain, ".")
	if dot <= 0 || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", invalid("email", raw, "the domain is not a host name with a dot")
	}
	for _, label := range strings.Split(domain, ".") {
		if strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return "", invalid("email", raw, "a label of the domain starts or ends with a hyphen")
		}
		for _, r := range label {
			if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-') {
				return "", invalid("email", raw, "the domain has a character host names do not allow")
			}
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", invalid("email", raw, "not a plain email address")
	}
	return s, nil
}
