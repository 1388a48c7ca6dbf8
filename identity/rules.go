// Package identity decides which typed identifiers an event carries and
// which of them may join profiles together: priorities between types, limits
// per type, and values that never identify anyone.
package identity

import (
	"fmt"
	"sort"
	"strings"

	"github.com/portrait-cdp/portrait"
)

// Rules configure identity resolution.
type Rules struct {
	// Priority ranks identifier types: lower is stronger. An event lands on
	// the profile of its strongest identifier. Unlisted types rank after
	// all listed ones except anonymous_id.
	Priority []string `json:"priority" yaml:"priority"`
	// Limits caps how many distinct values of a type one profile may hold
	// (0: no cap). A merge that would exceed a cap is refused. Types not
	// listed get DefaultLimit, so that an identifier type nobody declared
	// (any client can send one in context.externalIds) cannot merge
	// thousands of profiles through one shared value.
	Limits       map[string]int `json:"limits" yaml:"limits"`
	DefaultLimit int            `json:"default_limit" yaml:"default_limit"`
	// Blocked values never identify anyone, whatever their type
	// (compared case-insensitively after normalisation).
	Blocked []string `json:"blocked" yaml:"blocked"`
	// BlockedByType adds values blocked for one type only.
	BlockedByType map[string][]string `json:"blocked_by_type" yaml:"blocked_by_type"`
	// TraitIdentifiers are trait names whose values are identifiers of the
	// same-named type (email, phone, wechat_openid, ...).
	TraitIdentifiers []string `json:"trait_identifiers" yaml:"trait_identifiers"`
	// Normalize, when set, standardises a value of a type (e.g. phone to
	// E.164); ok=false means the value is not a valid identifier.
	Normalize func(typ, value string) (string, bool) `json:"-" yaml:"-"`

	rank    map[string]int
	blocked map[string]bool
}

// DefaultRules are sensible defaults: one user_id per person, a handful of
// emails and phones, and the junk values SDKs and forms are known to send.
func DefaultRules() *Rules {
	r := &Rules{
		Priority:     []string{portrait.IDUserID, "crm_id", "id_card", "wechat_unionid", portrait.IDEmail, portrait.IDPhone, "wechat_openid", portrait.IDAnonymousID},
		Limits:       map[string]int{portrait.IDUserID: 1, "crm_id": 1, "id_card": 1, "wechat_unionid": 1, portrait.IDEmail: 5, portrait.IDPhone: 5, "wechat_openid": 10, portrait.IDAnonymousID: 500},
		DefaultLimit: 10,
		Blocked: []string{"", "null", "nil", "none", "undefined", "unknown", "n/a", "na", "0", "-1", "-", "anonymous", "guest",
			"test", "test@test.com", "test@example.com", "noemail@noemail.com", "no@email.com", "user@example.com",
			"00000000-0000-0000-0000-000000000000", "[object object]", "nan", "false", "true"},
		BlockedByType:    map[string][]string{portrait.IDPhone: {"+10000000000", "00000000000", "+8600000000000", "13800000000", "+8613800000000"}},
		TraitIdentifiers: []string{portrait.IDEmail, portrait.IDPhone, "wechat_openid", "wechat_unionid", "crm_id", "id_card"},
	}
	return r.Compile()
}

// Compile prepares lookup tables; call it after changing the fields.
func (r *Rules) Compile() *Rules {
	r.rank = make(map[string]int, len(r.Priority))
	for i, t := range r.Priority {
		r.rank[t] = i
	}
	r.blocked = make(map[string]bool)
	for _, v := range r.Blocked {
		r.blocked["\x00"+strings.ToLower(strings.TrimSpace(v))] = true
	}
	for t, vs := range r.BlockedByType {
		for _, v := range vs {
			r.blocked[t+"\x00"+strings.ToLower(strings.TrimSpace(v))] = true
		}
	}
	return r
}

// Validate reports configuration mistakes.
func (r *Rules) Validate() error {
	seen := map[string]bool{}
	for _, t := range r.Priority {
		if t == "" {
			return portrait.Errorf(portrait.EINVALID, "identity priority lists an empty type")
		}
		if seen[t] {
			return portrait.Errorf(portrait.EINVALID, "identity priority lists %q twice", t)
		}
		seen[t] = true
	}
	for t, n := range r.Limits {
		if n < 0 {
			return portrait.Errorf(portrait.EINVALID, "identity limit for %q is negative", t)
		}
	}
	return nil
}

// Rank of a type: lower is stronger.
func (r *Rules) Rank(typ string) int {
	if i, ok := r.rank[typ]; ok {
		return 2 * i
	}
	// A custom type is a deliberate identifier: stronger than a device's
	// anonymous id, weaker than every type the operator ranked.
	if i, ok := r.rank[portrait.IDAnonymousID]; ok {
		if typ == portrait.IDAnonymousID {
			return 2 * i
		}
		return 2*i - 1
	}
	if typ == portrait.IDAnonymousID {
		return 2*len(r.rank) + 2
	}
	return 2 * len(r.rank)
}

// Limit of a type (0: none).
func (r *Rules) Limit(typ string) int {
	if n, ok := r.Limits[typ]; ok {
		return n
	}
	return r.DefaultLimit
}

// validType: identifier types are short names, so that what a client sends
// in context.externalIds cannot be arbitrary text.
func validType(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for i, c := range t {
		switch {
		case c >= 'a' && c <= 'z', c == '_', i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

// IsBlocked reports whether value never identifies anyone (any type).
func (r *Rules) IsBlocked(value string) bool {
	return r.blocked["\x00"+strings.ToLower(strings.TrimSpace(value))]
}

func (r *Rules) isBlocked(typ, value string) bool {
	v := strings.ToLower(strings.TrimSpace(value))
	return r.blocked["\x00"+v] || r.blocked[typ+"\x00"+v]
}

// Less orders identifiers strongest first, then by type and value, so that
// every decision that walks them is deterministic.
func (r *Rules) Less(a, b portrait.Identifier) bool {
	ra, rb := r.Rank(a.Type), r.Rank(b.Type)
	if ra != rb {
		return ra < rb
	}
	if a.Type != b.Type {
		return a.Type < b.Type
	}
	return a.Value < b.Value
}

// Refusal says why an identifier was not taken.
type Refusal struct {
	Identifier portrait.Identifier
	Reason     string
}

// Identifiers returns the usable identifiers of an event, strongest first,
// deduplicated, and the values refused as blocked or invalid.
//
// traits are the event's traits (identify) merged with context.traits;
// externalIDs come from context.externalIds.
func (r *Rules) Identifiers(e *portrait.Event, traits map[string]any, externalIDs []portrait.Identifier) ([]portrait.Identifier, []Refusal) {
	var ids []portrait.Identifier
	var refused []Refusal
	seen := map[portrait.Identifier]bool{}
	add := func(typ string, raw any) {
		var v string
		switch x := raw.(type) {
		case string:
			v = x
		case float64:
			v = fmt.Sprintf("%.0f", x)
		case nil:
			return
		default:
			v = fmt.Sprint(x)
		}
		typ = strings.ToLower(strings.TrimSpace(typ))
		v = strings.TrimSpace(v)
		if typ == "" || v == "" {
			return
		}
		if !validType(typ) {
			refused = append(refused, Refusal{portrait.Identifier{Type: typ, Value: v}, "not a valid identifier type (letters, digits and _)"})
			return
		}
		nv, ok := r.normalize(typ, v)
		if !ok {
			refused = append(refused, Refusal{portrait.Identifier{Type: typ, Value: v}, "not a valid " + typ})
			return
		}
		id := portrait.Identifier{Type: typ, Value: nv}
		if r.isBlocked(typ, nv) {
			refused = append(refused, Refusal{id, "blocked value"})
			return
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	add(portrait.IDUserID, e.UserID)
	add(portrait.IDAnonymousID, e.AnonymousID)
	if e.Type == portrait.EventAlias {
		// previousId is, in practice, the anonymous id being tied to the
		// user; reading it as one keeps resolution independent of what
		// happens to exist already.
		add(portrait.IDAnonymousID, e.PreviousID)
	}
	for _, name := range r.TraitIdentifiers {
		switch v := traits[name].(type) {
		case []any:
			for _, x := range v {
				add(name, x)
			}
		default:
			add(name, v)
		}
	}
	for _, x := range externalIDs {
		add(x.Type, x.Value)
	}
	sort.Slice(ids, func(i, j int) bool { return r.Less(ids[i], ids[j]) })
	return ids, refused
}

func (r *Rules) normalize(typ, v string) (string, bool) {
	if r.Normalize != nil {
		return r.Normalize(typ, v)
	}
	return DefaultNormalize(typ, v)
}

// DefaultNormalize standardises the common types without external data:
// emails lower-cased, phones reduced to digits and a leading +.
func DefaultNormalize(typ, v string) (string, bool) {
	switch typ {
	case portrait.IDEmail:
		v = strings.ToLower(strings.TrimSpace(v))
		at := strings.LastIndexByte(v, '@')
		if at <= 0 || at == len(v)-1 || strings.ContainsAny(v, " \t") {
			return v, false
		}
		return v, true
	case portrait.IDPhone:
		var b strings.Builder
		for i, c := range v {
			switch {
			case c >= '0' && c <= '9':
				b.WriteRune(c)
			case c >= '０' && c <= '９':
				b.WriteRune('0' + (c - '０'))
			case (c == '+' || c == '＋') && i == 0:
				b.WriteByte('+')
			}
		}
		s := b.String()
		return s, len(strings.TrimPrefix(s, "+")) >= 5
	}
	return v, true
}
