package access

import "strings"

// Rule is what a route needs. Every route the server mounts has one;
// Lookup fails for a route without, and the server then refuses it (fail
// closed), which the authorisation matrix test turns into a failure.
type Rule struct {
	// Public routes need no principal (health, the OpenAPI document, the
	// sign-in itself); Ingest routes need a write key.
	Public, Ingest bool
	// Scope is the family:access the principal needs.
	Scope string
	// Personal routes return personal data: every call is audited with the
	// classified fields it carried.
	Personal bool
}

func r(fam, acc string, personal bool) Rule {
	return Rule{Scope: fam + ":" + acc, Personal: personal}
}

// rules maps "METHOD /pattern" (as registered on the ServeMux) to its rule.
var rules = map[string]Rule{
	"GET /healthz": {Public: true}, "GET /readyz": {Public: true}, "GET /openapi.json": {Public: true},
	// /metrics carries counts, never personal values.
	"GET /metrics":     {Public: true},
	"POST /v1/session": {Public: true}, "GET /v1/session": {Public: true}, "DELETE /v1/session": {Public: true},
	"GET /console/signin": {Public: true},

	"POST /v1/identify": {Ingest: true}, "POST /v1/track": {Ingest: true}, "POST /v1/page": {Ingest: true},
	"POST /v1/screen": {Ingest: true}, "POST /v1/group": {Ingest: true}, "POST /v1/alias": {Ingest: true},
	"POST /v1/batch": {Ingest: true}, "POST /v1/import": {Ingest: true},

	"GET /v1/profiles/lookup":                    r(FamProfiles, "read", true),
	"GET /v1/profiles/{id}":                      r(FamProfiles, "read", true),
	"GET /v1/profiles/{id}/events":               r(FamProfiles, "read", true),
	"GET /v1/profiles/{id}/merges":               r(FamProfiles, "read", true),
	"GET /v1/profiles/{id}/issues":               r(FamProfiles, "read", true),
	"GET /v1/profiles/{id}/segments":             r(FamProfiles, "read", true),
	"POST /v1/profiles/{id}/merges/{merge}/undo": r(FamProfiles, "write", true),
	"GET /v1/profiles":                           r(FamProfiles, "read", true),
	"GET /v1/search":                             r(FamProfiles, "read", true),

	"GET /v1/quarantine":   r(FamImports, "read", true),
	"POST /v1/imports":     r(FamImports, "write", false),
	"GET /v1/imports/{id}": r(FamImports, "read", false),
	"GET /v1/imports":      r(FamImports, "read", false),
	"GET /v1/quality":      r(FamImports, "read", true),

	"POST /v1/linkage/runs":                   r(FamLinkage, "write", false),
	"GET /v1/linkage/candidates":              r(FamLinkage, "read", true),
	"GET /v1/linkage/duplicates":              r(FamLinkage, "read", true),
	"POST /v1/linkage/candidates/{id}/accept": r(FamLinkage, "write", true),
	"POST /v1/linkage/candidates/{id}/reject": r(FamLinkage, "write", true),

	"POST /v1/analytics/runs":           r(FamAnalytics, "write", false),
	"GET /v1/analytics/runs":            r(FamAnalytics, "read", false),
	"GET /v1/analytics/runs/{id}":       r(FamAnalytics, "read", false),
	"GET /v1/analytics/nps":             r(FamAnalytics, "read", true),
	"GET /v1/analytics/rfm/boundaries":  r(FamAnalytics, "read", false),
	"POST /v1/analytics/rfm/boundaries": r(FamAnalytics, "write", false),
	"GET /v1/breakdown":                 r(FamAnalytics, "read", false),
	"GET /v1/lifecycle/distribution":    r(FamAnalytics, "read", false),
	"GET /v1/lifecycle/flows":           r(FamAnalytics, "read", false),
	"GET /v1/overview":                  r(FamAnalytics, "read", false),

	"POST /v1/segments":         r(FamSegments, "write", false),
	"GET /v1/segments":          r(FamSegments, "read", false),
	"GET /v1/segments/{id}":     r(FamSegments, "read", false),
	"PUT /v1/segments/{id}":     r(FamSegments, "write", false),
	"DELETE /v1/segments/{id}":  r(FamSegments, "write", false),
	"POST /v1/segments/preview": r(FamSegments, "read", true),
	// other methods on the preview only answer 405 (not a segment id)
	"GET /v1/segments/preview": r(FamSegments, "read", false), "PUT /v1/segments/preview": r(FamSegments, "read", false),
	"DELETE /v1/segments/preview":                r(FamSegments, "read", false),
	"GET /v1/segments/overlap":                   r(FamSegments, "read", false),
	"GET /v1/segments/{id}/members":              r(FamSegments, "read", true),
	"GET /v1/segments/{id}/export":               r(FamSegments, "read", true),
	"GET /v1/segments/{id}/explain/{profileId}":  r(FamSegments, "read", true),
	"GET /v1/segments/{id}/events":               r(FamSegments, "read", false),
	"GET /v1/segments/stream":                    r(FamSegments, "read", false),
	"POST /v1/segment-webhooks":                  r(FamSegments, "write", false),
	"GET /v1/segment-webhooks":                   r(FamSegments, "read", false),
	"DELETE /v1/segment-webhooks/{id}":           r(FamSegments, "write", false),
	"GET /v1/segment-webhooks/{id}/dead-letters": r(FamSegments, "read", false),

	"GET /v1/tags":           r(FamTags, "read", false),
	"POST /v1/tags":          r(FamTags, "write", false),
	"GET /v1/tags/{name}":    r(FamTags, "read", false),
	"DELETE /v1/tags/{name}": r(FamTags, "write", false),

	"GET /v1/traits":                        r(FamTraits, "read", false),
	"POST /v1/traits":                       r(FamTraits, "write", false),
	"DELETE /v1/traits/{name}":              r(FamTraits, "write", false),
	"GET /v1/classifications":               r(FamTraits, "read", false),
	"PUT /v1/classifications/{kind}/{name}": r(FamTraits, "write", false),
	"GET /v1/classifications/{kind}/{name}": r(FamTraits, "read", false),

	// the 360 page's first paint (console speed)
	"GET /v1/profiles/{id}/view": r(FamProfiles, "read", true),

	// customer business map and audience insight (issue 14)
	"GET /v1/map":                                     r(FamAnalytics, "read", false),
	"GET /v1/map/config":                              r(FamAnalytics, "read", false),
	"GET /v1/map/export":                              r(FamAnalytics, "read", false),
	"GET /v1/map/members":                             r(FamAnalytics, "read", true),
	"POST /v1/map/segments":                           r(FamSegments, "write", false),
	"GET /v1/segments/{id}/insight":                   r(FamSegments, "read", false),
	"POST /v1/segments/{id}/lookalike":                r(FamSegments, "write", false),
	"POST /v1/segments/upload":                        r(FamSegments, "write", true),
	"GET /v1/segment-deliveries":                      r(FamSegments, "read", false),
	"POST /v1/segment-deliveries":                     r(FamSegments, "write", true),
	"DELETE /v1/segment-deliveries/{id}":              r(FamSegments, "write", false),
	"POST /v1/segment-deliveries/{id}/run":            r(FamSegments, "write", true),
	"GET /v1/segment-deliveries/{id}/runs":            r(FamSegments, "read", false),
	"GET /v1/segment-deliveries/{id}/runs/{run}/file": r(FamSegments, "read", true),

	// corporate accounts (issue 16): companies are not persons, their
	// people are
	"GET /v1/accounts":                              r(FamAccounts, "read", false),
	"POST /v1/accounts":                             r(FamAccounts, "write", false),
	"GET /v1/accounts/export":                       r(FamAccounts, "read", true),
	"GET /v1/accounts/icp":                          r(FamAccounts, "read", false),
	"PUT /v1/accounts/icp":                          r(FamAccounts, "write", false),
	"POST /v1/accounts/icp/train":                   r(FamAccounts, "write", false),
	"GET /v1/accounts/lookalike":                    r(FamAccounts, "read", false),
	"GET /v1/accounts/lookup":                       r(FamAccounts, "read", false),
	"GET /v1/accounts/merges":                       r(FamAccounts, "read", false),
	"POST /v1/accounts/targets":                     r(FamAccounts, "write", true),
	"GET /v1/accounts/{id}":                         r(FamAccounts, "read", true),
	"PATCH /v1/accounts/{id}":                       r(FamAccounts, "write", false),
	"DELETE /v1/accounts/{id}":                      r(FamAccounts, "write", false),
	"POST /v1/accounts/{id}/needs":                  r(FamAccounts, "write", false),
	"PUT /v1/accounts/{id}/parent":                  r(FamAccounts, "write", false),
	"GET /v1/accounts/{id}/people":                  r(FamAccounts, "read", true),
	"PUT /v1/accounts/{id}/people/{person}":         r(FamAccounts, "write", true),
	"POST /v1/accounts/{id}/people/{person}/verify": r(FamAccounts, "write", true),
	"POST /v1/accounts/{id}/unmerge":                r(FamAccounts, "write", false),
	"POST /v1/accounts/{id}/verify":                 r(FamAccounts, "write", false),
	"GET /v1/people/{person}/accounts":              r(FamAccounts, "read", false),
	"GET /v1/industries":                            r(FamAccounts, "read", false),

	// erasure, suppression and consent (issue 15)
	"DELETE /v1/profiles/{id}":      r(FamPrivacy, "write", true),
	"DELETE /v1/profiles/lookup":    r(FamPrivacy, "write", true),
	"GET /v1/profiles/{id}/export":  r(FamPrivacy, "read", true),
	"GET /v1/profiles/{id}/consent": r(FamProfiles, "read", false),
	"PUT /v1/profiles/{id}/consent": r(FamConsent, "write", false),
	"GET /v1/suppressions":          r(FamPrivacy, "read", false),
	"POST /v1/suppressions/lift":    r(FamPrivacy, "write", false),
	"GET /v1/erasures":              r(FamAudit, "read", false),
	"GET /v1/retention":             r(FamAudit, "read", false),

	"GET /v1/keys":         r(FamKeys, "read", false),
	"POST /v1/keys":        r(FamKeys, "write", false),
	"DELETE /v1/keys/{id}": r(FamKeys, "write", false),
	// rotation status: key ids and counts, no personal value
	"GET /v1/keys/data-key": r(FamKeys, "read", false),
	"GET /v1/audit":         r(FamAudit, "read", false),
	"GET /v1/audit/verify":  r(FamAudit, "read", false),
}

// Lookup returns the rule of a ServeMux pattern ("GET /v1/profiles/{id}").
func Lookup(pattern string) (Rule, bool) {
	ru, ok := rules[pattern]
	return ru, ok
}

// Patterns lists every pattern with a rule.
func Patterns() []string {
	out := make([]string, 0, len(rules))
	for p := range rules {
		out = append(out, p)
	}
	return out
}

// Family is the endpoint family of a scope ("profiles:read" → "profiles").
func Family(scope string) string {
	f, _, _ := strings.Cut(scope, ":")
	return f
}
