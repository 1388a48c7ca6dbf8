package traits

import (
	"bytes"
	"strings"

	gojson "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
)

// sdkChannels maps the library names SDKs put in context.library.name
// (lower case) to the channel they imply. Checked against the SDKs' sources
// (2026-11): RudderStack's JavaScript SDK sends "RudderLabs JavaScript
// SDK", its iOS SDK "rudder-ios-library", its Android SDK its package name
// "com.rudderstack.android.sdk.core", its Node SDK "analytics-node" (it
// descends from Segment's), its .NET SDK "RudderAnalytics.NET". The other
// names are kept for SDK versions that send them.
var sdkChannels = map[string]string{
	"analytics.js":              "web",
	"analytics-next":            "web",
	"@segment/analytics-next":   "web",
	"rudderlabs javascript sdk": "web",

	"analytics-ios":                        "app",
	"analytics-android":                    "app",
	"analytics-react-native":               "app",
	"@segment/analytics-react-native":      "app",
	"analytics-kotlin":                     "app",
	"analytics-swift":                      "app",
	"analytics-flutter":                    "app",
	"rudder-ios-library":                   "app",
	"com.rudderstack.android.sdk.core":     "app",
	"com.rudderstack.android.sdk":          "app",
	"@rudderstack/rudder-sdk-react-native": "app",
	"rudder-sdk-flutter":                   "app",
	"rudderstack ios sdk":                  "app",
	"rudderstack android sdk":              "app",
	"@segment/analytics-node":              "server",
	"analytics-node":                       "server",
	"analytics-python":                     "server",
	"analytics-go":                         "server",
	"analytics-ruby":                       "server",
	"analytics-java":                       "server",
	"analytics-php":                        "server",
	"analytics-dotnet":                     "server",
	"analytics.net":                        "server",
	"@rudderstack/rudder-sdk-node":         "server",
	"rudder-sdk-node":                      "server",
	"rudder-analytics-python":              "server",
	"rudderstack python sdk":               "server",
	"rudderstack go sdk":                   "server",
	"rudderstack ruby sdk":                 "server",
	"rudderstack java sdk":                 "server",
	"rudderstack php sdk":                  "server",
	"rudderstack .net sdk":                 "server",
	"rudderanalytics.net":                  "server", // RudderStack's .NET SDK
	"rudderstack node sdk":                 "server",
	"com.rudderstack.sdk.java.analytics":   "server",
	"rudder-sdk-ruby":                      "server",
	"rudder-php-sdk":                       "server",
	"rudderanalytics":                      "server",
}

// sdkContext is what channel reads of an event's context.
type sdkContext struct {
	Library struct {
		Name any `json:"name"`
	} `json:"library"`
	Channel any `json:"channel"`
}

// channel is the channel an event came through: properties.channel when
// set; else the channel its SDK implies (context.library.name); else the
// channel the SDK declares beside the event (RudderStack's, with mobile
// called app as the library names call it); else context.channel; else the
// write key's name, which names a source rather than a channel and so
// comes last.
func channel(ev *portrait.Event, props map[string]any) string {
	if ch, _ := props["channel"].(string); ch != "" {
		return ch
	}
	// Decode the context only if it may say something: most events of a
	// source carry the same small context, but decoding it is the cost.
	if c := ev.Context; bytes.Contains(c, []byte(`"library"`)) || bytes.Contains(c, []byte(`"channel"`)) {
		var x sdkContext
		if gojson.Unmarshal(c, &x) == nil {
			if name, _ := x.Library.Name.(string); name != "" {
				if ch := sdkChannels[strings.ToLower(strings.TrimSpace(name))]; ch != "" {
					return ch
				}
			}
			if ch := declared(ev.Channel); ch != "" {
				return ch
			}
			if ch, _ := x.Channel.(string); ch != "" {
				return ch
			}
		}
	}
	if ch := declared(ev.Channel); ch != "" {
		return ch
	}
	return ev.Source
}

// Channel is channel for other enrichers (the service path, needs), so that
// a touchpoint is named the same way everywhere.
func Channel(ev *portrait.Event, props map[string]any) string { return channel(ev, props) }

// declared is the channel an SDK declares at the top level of an event.
func declared(ch string) string {
	if strings.EqualFold(strings.TrimSpace(ch), "mobile") {
		return "app"
	}
	return ch
}
