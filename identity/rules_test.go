package identity_test

import (
	"reflect"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
)

func TestIdentifiers(t *testing.T) {
	r := identity.DefaultRules()
	e := &portrait.Event{Type: portrait.EventIdentify, UserID: "u1", AnonymousID: "a1"}
	traits := map[string]any{"email": " Zhang.San@Example.COM ", "phone": "null", "wechat_openid": "oX1", "crm_id": 42.0, "name": "张三"}
	ext := []portrait.Identifier{{Type: "Member_No", Value: "M-7"}, {Type: "email", Value: "test@test.com"}, {Type: "../../x", Value: "1"}}
	ids, refused := r.Identifiers(e, traits, ext)
	want := []portrait.Identifier{
		{Type: "user_id", Value: "u1"}, {Type: "crm_id", Value: "42"}, {Type: "email", Value: "zhang.san@example.com"},
		{Type: "wechat_openid", Value: "oX1"}, {Type: "member_no", Value: "M-7"}, {Type: "anonymous_id", Value: "a1"},
	}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("ids\n got %v\nwant %v", ids, want)
	}
	if len(refused) != 3 {
		t.Errorf("refused %v: want the blocked phone, the blocked test email and the bad type", refused)
	}
	if r.Limit("member_no") != r.DefaultLimit || r.DefaultLimit == 0 {
		t.Errorf("an undeclared type has limit %d", r.Limit("member_no"))
	}
}

func TestAliasPreviousIDIsAnonymous(t *testing.T) {
	r := identity.DefaultRules()
	ids, _ := r.Identifiers(&portrait.Event{Type: portrait.EventAlias, UserID: "u1", PreviousID: "anon-9"}, nil, nil)
	if len(ids) != 2 || ids[1] != (portrait.Identifier{Type: "anonymous_id", Value: "anon-9"}) {
		t.Errorf("%v", ids)
	}
}

func TestValidate(t *testing.T) {
	for _, r := range []*identity.Rules{
		{Priority: []string{"email", "email"}},
		{Priority: []string{""}},
		{Limits: map[string]int{"email": -1}},
	} {
		if err := r.Validate(); err == nil {
			t.Errorf("%+v: want an error", r)
		}
	}
	if err := identity.DefaultRules().Validate(); err != nil {
		t.Error(err)
	}
}

func TestDefaultNormalize(t *testing.T) {
	for _, c := range []struct {
		typ, in, out string
		ok           bool
	}{
		{"email", "A@B.CO", "a@b.co", true}, {"email", "no-at", "no-at", false}, {"email", "a @b.co", "a @b.co", false},
		{"phone", "+86 138-0013-8000", "+8613800138000", true}, {"phone", "１３８００１３８０００", "13800138000", true}, {"phone", "12", "12", false},
		{"crm_id", "X-1", "X-1", true},
	} {
		got, ok := identity.DefaultNormalize(c.typ, c.in)
		if got != c.out || ok != c.ok {
			t.Errorf("%s %q: %q %v, want %q %v", c.typ, c.in, got, ok, c.out, c.ok)
		}
	}
}
