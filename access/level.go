// Package access decides who may do what and see which values: roles and
// their scopes per endpoint family, clearance levels against the trait and
// identifier classification (密级), the one masking function every response
// goes through, and the hash chain of the audit log.
package access

import (
	"strings"

	"github.com/portrait-cdp/portrait"
)

// Level is a classification (of a value) or a clearance (of a principal).
// A principal sees a value unmasked when its clearance is at least the
// value's level.
type Level int

// The levels, lowest first. Their names are the trait schema's
// classification names (traits.Classifications).
const (
	Public       Level = iota // 公开
	Internal                  // 内部
	Confidential              // 秘密
	Secret                    // 机密
)

var levelNames = []string{"public", "internal", "confidential", "secret"}

// LevelNamesZh are the Chinese names, for documents and the console.
var LevelNamesZh = map[string]string{"public": "公开", "internal": "内部", "confidential": "秘密", "secret": "机密"}

func (l Level) String() string {
	if l < Public || l > Secret {
		return "secret"
	}
	return levelNames[l]
}

// ParseLevel reads a level name (English or Chinese).
func ParseLevel(s string) (Level, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, n := range levelNames {
		if s == n || s == LevelNamesZh[n] {
			return Level(i), nil
		}
	}
	return Secret, portrait.Errorf(portrait.EINVALID, "level %q is not one of public, internal, confidential, secret", s)
}

// LevelNames lists the level names, lowest first.
func LevelNames() []string { return append([]string(nil), levelNames...) }
