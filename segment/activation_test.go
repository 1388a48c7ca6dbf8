package segment_test

import (
	"testing"

	"github.com/portrait-cdp/portrait/segment"
)

// Reference hashes computed independently:
// printf '%s' '+8613800138000' | sha256sum and printf '%s' 'li.si@example.com' | sha256sum.
func TestHashIdentifierAsAdPlatformsExpect(t *testing.T) {
	for _, c := range []struct{ typ, in, want string }{
		{"phone", "+8613800138000", "PHONE"},
		{"phone", " +86 138-0013-8000 ", "PHONE"},
		{"email", "li.si@example.com", "EMAIL"},
		{"email", "  LI.Si@Example.COM ", "EMAIL"},
	} {
		if got := segment.HashIdentifier(c.typ, c.in); got != refs[c.want] {
			t.Errorf("%s %q: %s, want %s", c.typ, c.in, got, refs[c.want])
		}
	}
}

var refs = map[string]string{
	"PHONE": "ec61f3c620a98bdead8c1f1f0ae747abd1b62a0c2dba4fd4bc22cf0d1d8653e5",
	"EMAIL": "acf12582153588be34d0a17a700385849e7c6b58326743e749ade43ad42a879b",
}
