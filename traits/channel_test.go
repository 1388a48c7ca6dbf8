package traits_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// preferred_channel: properties.channel, then the channel the SDK implies,
// then the one it declares beside the event,
// then context.channel, and only then the write key's name.
func TestPreferredChannelOrder(t *testing.T) {
	cases := []struct {
		name, props, context, want string
		declared                   string // the event's top-level channel
	}{
		{"property first", `{"channel":"email"}`, `{"library":{"name":"analytics-ios"}}`, "email", ""},
		{"web sdk", `{}`, `{"library":{"name":"analytics.js","version":"2.11.1"}}`, "web", ""},
		{"segment next", ``, `{"library":{"name":"@segment/analytics-next"}}`, "web", ""},
		{"rudder js", `{}`, `{"library":{"name":"RudderLabs JavaScript SDK"}}`, "web", ""},
		{"app sdk", `{}`, `{"library":{"name":"analytics-android"},"channel":"other"}`, "app", ""},
		{"swift", `{}`, `{"library":{"name":"analytics-swift"}}`, "app", ""},
		{"server sdk", `{}`, `{"library":{"name":"analytics-python"}}`, "server", ""},
		{"go sdk", `{}`, `{"library":{"name":"analytics-go"}}`, "server", ""},
		{"rudder ios", `{}`, `{"library":{"name":"rudder-ios-library","version":"1.26.3"}}`, "app", ""},
		{"rudder android", `{}`, `{"library":{"name":"com.rudderstack.android.sdk.core"}}`, "app", ""},
		{"rudder .net", `{}`, `{"library":{"name":"RudderAnalytics.NET"}}`, "server", ""},
		{"unknown sdk, context channel", `{}`, `{"library":{"name":"my-sdk"},"channel":"kiosk"}`, "kiosk", ""},
		{"context channel", `{"channel":""}`, `{"channel":"pos"}`, "pos", ""},
		{"nothing: source", `{}`, `{"ip":"1.2.3.4"}`, "key-1", ""},
		{"odd types: source", `{"channel":3}`, `{"library":{"name":7},"channel":false}`, "key-1", ""},
		// RudderStack's SDKs declare a channel beside the event.
		{"declared web", `{}`, `{"ip":"1.2.3.4"}`, "web", "web"},
		{"declared mobile is app", ``, `{"library":{"name":"some-rudder-sdk"}}`, "app", "mobile"},
		{"declared over context channel", `{}`, `{"channel":"pos"}`, "server", "server"},
		{"known library over declared", `{}`, `{"library":{"name":"analytics-ios"}}`, "app", "web"},
		{"property over declared", `{"channel":"email"}`, ``, "email", "mobile"},
		{"declared, no context", `{}`, ``, "sources", "sources"},
		{"unreadable context: source", `{}`, `{"library":`, "key-1", ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			en, err := traits.New(traits.DefaultConfig(), nil)
			if err != nil {
				t.Fatal(err)
			}
			ev := &portrait.Event{MessageID: fmt.Sprint("m", i), Type: portrait.EventPage, Name: "Home", Source: "key-1", UserID: "u", Timestamp: t0, Context: []byte(c.context), Channel: c.declared}
			var props map[string]any
			if c.props != "" {
				props = map[string]any{}
				if err := jsonUnmarshal(c.props, &props); err != nil {
					t.Fatal(err)
				}
			}
			p := &portrait.Profile{ID: "u", FirstSeen: t0, FirstKey: ev.Key(), LastSeen: t0, LastKey: ev.Key()}
			en.Event(p, ev, props)
			en.Finish(p, t0.Add(time.Hour))
			if got := p.Traits["preferred_channel"].Value; got != c.want {
				t.Fatalf("preferred_channel = %v, want %q", got, c.want)
			}
		})
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
