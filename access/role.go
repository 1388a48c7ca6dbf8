package access

import (
	"crypto/rand"
	"encoding/base32"
	"slices"
	"sort"
	"strings"

	"github.com/portrait-cdp/portrait"
)

// Endpoint families. A scope is a family and an access, "profiles:read";
// a rule names the one scope a route needs.
const (
	FamProfiles  = "profiles"  // profiles, 360, lookup, search, lists
	FamSegments  = "segments"  // segments, members, exports, webhooks, stream
	FamTags      = "tags"      // tags and their rules
	FamTraits    = "traits"    // trait schema, computed traits, classification
	FamAnalytics = "analytics" // analytics runs, breakdowns, lifecycle, overview, NPS, RFM
	FamImports   = "imports"   // uploads, quarantine, quality
	FamLinkage   = "linkage"   // probabilistic linkage and its review
	FamKeys      = "keys"      // API tokens and write keys
	FamAudit     = "audit"     // the audit log
	FamAccounts  = "accounts"  // corporate accounts, buying committees, ICP (issue 16)
	FamPrivacy   = "privacy"   // erasure, suppressions, a person's export (issue 15)
	FamConsent   = "consent"   // recording a person's consent decisions (issue 15)
)

// Families lists every endpoint family.
var Families = []string{FamProfiles, FamSegments, FamTags, FamTraits, FamAnalytics, FamImports, FamLinkage, FamKeys, FamAudit, FamAccounts, FamPrivacy, FamConsent}

// Roles.
const (
	RoleAdmin     = "admin"
	RoleAnalyst   = "analyst"
	RoleMarketing = "marketing"
	RoleSales     = "sales"
	RoleService   = "service"
	RoleAuditor   = "auditor"
	RoleCustom    = "custom"
)

// Roles lists the built-in roles (custom is a key's own scope list).
var Roles = []string{RoleAdmin, RoleAnalyst, RoleMarketing, RoleSales, RoleService, RoleAuditor}

func rw(fams ...string) []string {
	var out []string
	for _, f := range fams {
		out = append(out, f+":read", f+":write")
	}
	return out
}

func ro(fams ...string) []string {
	var out []string
	for _, f := range fams {
		out = append(out, f+":read")
	}
	return out
}

// roleScopes: what each built-in role may do. An analyst studies and
// defines (segments, tags, computed traits, analyses) but manages no keys;
// marketing works with segments and their deliveries; sales and service
// look customers up, sales also works its accounts (verifying committee
// roles, recording needs); service records a customer's consent decisions
// (consent:write, a family of its own: privacy:write also erases, and a
// service desk taking a withdrawal by phone needed an admin token for it)
// and answers their requests for their data; the auditor reads the audit
// log and the key list and nothing personal. Erasure is the admin's.
var roleScopes = map[string][]string{
	RoleAdmin:     rw(Families...),
	RoleAnalyst:   append(rw(FamSegments, FamTags, FamAnalytics), ro(FamProfiles, FamTraits, FamImports, FamLinkage, FamAccounts)...),
	RoleMarketing: append(rw(FamSegments), ro(FamProfiles, FamTags, FamTraits, FamAnalytics, FamAccounts)...),
	RoleSales:     append(rw(FamAccounts), ro(FamProfiles, FamSegments, FamTags)...),
	RoleService:   append(ro(FamProfiles, FamTags, FamAccounts), FamPrivacy+":read", FamConsent+":write"),
	RoleAuditor:   ro(FamAudit, FamKeys),
}

// defaultClearance is the clearance a token of a role gets when none is
// given: enough for the role's work, no more.
var defaultClearance = map[string]Level{
	RoleAdmin: Secret, RoleAnalyst: Internal, RoleMarketing: Internal,
	RoleSales: Confidential, RoleService: Confidential, RoleAuditor: Public, RoleCustom: Public,
}

// DefaultClearance is the clearance a new token of role gets by default.
func DefaultClearance(role string) Level { return defaultClearance[role] }

// RoleScopes returns the scopes of a built-in role (nil for custom).
func RoleScopes(role string) []string { return append([]string(nil), roleScopes[role]...) }

// CheckRole validates a role and, for custom, its scopes; it returns the
// scopes in canonical order.
func CheckRole(role string, scopes []string) ([]string, error) {
	if role == RoleCustom {
		if len(scopes) == 0 {
			return nil, portrait.Errorf(portrait.EINVALID, "a custom role needs scopes, e.g. [\"profiles:read\", \"segments:write\"]")
		}
		out := make([]string, 0, len(scopes))
		for _, sc := range scopes {
			fam, acc, ok := strings.Cut(sc, ":")
			if !ok || !slices.Contains(Families, fam) || (acc != "read" && acc != "write") {
				return nil, portrait.Errorf(portrait.EINVALID, "scope %q is not family:read or family:write with a family among %s", sc, strings.Join(Families, ", "))
			}
			if sc == FamKeys+":write" {
				// Whoever manages keys can make any key: that is the admin role.
				return nil, portrait.Errorf(portrait.EINVALID, "keys:write belongs to the admin role only")
			}
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
		sort.Strings(out)
		return out, nil
	}
	if _, ok := roleScopes[role]; !ok {
		return nil, portrait.Errorf(portrait.EINVALID, "role %q is not one of %s or custom", role, strings.Join(Roles, ", "))
	}
	if len(scopes) > 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "scopes are given only with the custom role")
	}
	return nil, nil
}

// Principal is who a request acts for.
type Principal struct {
	KeyID     int64
	Name      string
	Role      string
	Scopes    []string // custom role only
	Clearance Level
}

// PrincipalOf reads a key's role and clearance. A key without a role
// holds no scope and sees nothing classified (fail closed): the store gives
// every API token a role (migration log/015 made the tokens from before
// admin, secret), so an empty role means a key read without its role.
func PrincipalOf(k *portrait.Key) Principal {
	p := Principal{KeyID: k.ID, Name: k.Name, Role: k.Role, Scopes: k.Scopes, Clearance: Public}
	if l, err := ParseLevel(k.Clearance); err == nil && k.Clearance != "" {
		p.Clearance = l
	}
	return p
}

// Can reports whether p holds scope.
func (p Principal) Can(scope string) bool {
	if p.Role == RoleCustom {
		return slices.Contains(p.Scopes, scope)
	}
	return slices.Contains(roleScopes[p.Role], scope)
}

// Sees reports whether p sees a value of level l unmasked.
func (p Principal) Sees(l Level) bool { return p.Clearance >= l }

// NewSecret returns a random API secret: the prefix and 32 base32
// characters (160 bits).
func NewSecret(prefix string) string {
	b := make([]byte, 20)
	rand.Read(b)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}
