package demo

// Sources are the systems the demo's events come from. Each is sent with a
// write key of its own, whose name is the source every fact it carries is
// attributed to, as in a real deployment where the website, the apps, the
// stores' tills, the CRM and the survey tool each have their key.
var Sources = []string{"web", "app", "pos", "crm", "survey"}

// SourceOf says which system sends a demo event: the SDK in its context
// (analytics.js is the website, the mobile SDKs the apps, the till export
// the stores), the channel an order was placed on, and otherwise what the
// event is about (surveys from the survey tool; accounts, key persons,
// customer master data and service tickets from the CRM).
func SourceOf(e map[string]any) string {
	ctx, _ := e["context"].(map[string]any)
	lib, _ := ctx["library"].(map[string]any)
	switch name, _ := lib["name"].(string); name {
	case "pos-export":
		return "pos"
	case "crm-sync": // the corporate accounts' sales records (accounts.go)
		return "crm"
	case "analytics.js":
		return "web"
	case "analytics-ios", "com.rudderstack.android.sdk.core":
		return "app"
	}
	switch e["event"] {
	case "Survey Completed":
		return "survey"
	case "Ticket Opened":
		return "crm"
	case "Order Completed":
		props, _ := e["properties"].(map[string]any)
		switch props["channel"] {
		case "app":
			return "app"
		case "store":
			return "pos"
		}
		return "web"
	}
	switch e["type"] {
	case "group", "identify":
		return "crm"
	}
	return "web"
}
