package erasure

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
)

// Consent is kept per purpose as a profile trait named ConsentTrait(purpose)
// whose value is one of the states below, with the provenance of any trait
// (source, time, message): the latest decision by event time wins, so a
// replay or any arrival order gives the same consent.
const (
	Granted   = "granted"
	Denied    = "denied"
	Withdrawn = "withdrawn"
)

// Purposes that need consent; a segment, export or webhook declaring one
// excludes every profile that has not granted it. AutomatedDecision is the
// PIPL art. 24 opt-out of marketing by automated decision-making: denied or
// withdrawn, it excludes the profile from marketing as well.
const (
	PurposeMarketing       = "marketing"
	PurposeAnalytics       = "analytics"
	PurposePersonalisation = "personalisation"
	PurposeThirdParty      = "third_party"
	AutomatedDecision      = "automated_decision"
)

// ConsentEvents are the track events that carry consent decisions in their
// properties (Segment's name, and a shorter one).
var ConsentEvents = map[string]bool{"Segment Consent Preference Updated": true, "Consent Updated": true}

// ConsentTrait is the trait holding consent to purpose.
func ConsentTrait(purpose string) string { return "consent_" + purpose }

// NormalizePurpose maps the category names consent platforms use
// (OneTrust's Advertising, Segment's DataSharing) to Portrait's purposes;
// others are kept, lower-cased.
func NormalizePurpose(s string) string {
	k := strings.ToLower(strings.NewReplacer(" ", "", "-", "", "_", "").Replace(strings.TrimSpace(s)))
	switch k {
	case "marketing", "advertising", "ads", "targeting":
		return PurposeMarketing
	case "analytics", "performance", "statistics":
		return PurposeAnalytics
	case "personalisation", "personalization", "functional":
		return PurposePersonalisation
	case "thirdparty", "thirdpartysharing", "datasharing", "sharing":
		return PurposeThirdParty
	case "automateddecision", "automateddecisionmaking", "profiling":
		return AutomatedDecision
	}
	return strings.ToLower(strings.TrimSpace(s))
}

// decisions reads the consent an event carries: context.consent.
// categoryPreferences on any event (true: granted, false: denied), and, on
// a consent event, properties.categoryPreferences or {purpose, state}.
func decisions(e *portrait.Event) map[string]string {
	out := map[string]string{}
	put := func(prefs map[string]any) {
		for k, v := range prefs {
			p := NormalizePurpose(k)
			if p == "" || len(p) > 64 {
				continue
			}
			switch x := v.(type) {
			case bool:
				if x {
					out[p] = Granted
				} else {
					out[p] = Denied
				}
			case string:
				if s := strings.ToLower(x); s == Granted || s == Denied || s == Withdrawn {
					out[p] = s
				}
			}
		}
	}
	if len(e.Context) > 0 && strings.Contains(string(e.Context), `"consent"`) {
		var c struct {
			Consent struct {
				CategoryPreferences map[string]any `json:"categoryPreferences"`
			} `json:"consent"`
		}
		if json.Unmarshal(e.Context, &c) == nil {
			put(c.Consent.CategoryPreferences)
		}
	}
	if e.Type == portrait.EventTrack && ConsentEvents[e.Name] && len(e.Properties) > 0 {
		var p struct {
			CategoryPreferences map[string]any `json:"categoryPreferences"`
			Purpose             string         `json:"purpose"`
			State               string         `json:"state"`
		}
		if json.Unmarshal(e.Properties, &p) == nil {
			put(p.CategoryPreferences)
			if p.Purpose != "" {
				put(map[string]any{p.Purpose: p.State})
			}
		}
	}
	return out
}

// ConsentEnricher keeps consent traits from the events a profile receives.
type ConsentEnricher struct{}

var _ profile.Enricher = ConsentEnricher{}

// Event records the consent decisions e carries on p.
func (ConsentEnricher) Event(p *portrait.Profile, e *portrait.Event, _ map[string]any) {
	for purpose, state := range decisions(e) {
		name := ConsentTrait(purpose)
		c := portrait.Trait{Value: state, Source: e.Source, Time: e.Timestamp, MessageID: e.MessageID}
		if cur, ok := p.Traits[name]; ok && !profile.Wins(c, cur) {
			continue
		}
		if p.Traits == nil {
			p.Traits = map[string]portrait.Trait{}
		}
		p.Traits[name] = c
	}
}

// Merge needs nothing: the traits are merged already.
func (ConsentEnricher) Merge(keep, gone *portrait.Profile) {}

// Finish needs nothing.
func (ConsentEnricher) Finish(*portrait.Profile, time.Time) {}

// ConsentBook answers "may this profile be used for that purpose" from
// memory, for segment evaluation (segment.Service.Consent): it follows the
// processor's changes and holds only the profiles that carry any consent.
type ConsentBook struct {
	mu sync.RWMutex
	m  map[string]map[string]string
}

// Load reads every profile's consent (all: AllProfiles).
func (b *ConsentBook) Load(ctx context.Context, all func(ctx context.Context, fn func(*portrait.Profile) error) error) error {
	return all(ctx, func(p *portrait.Profile) error {
		b.OnChange([]*portrait.Profile{p}, nil, nil)
		return nil
	})
}

// OnChange follows the processor (profile.Processor.OnChange).
func (b *ConsentBook) OnChange(changed []*portrait.Profile, deleted []string, _ map[string][]*portrait.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]map[string]string{}
	}
	for _, id := range deleted {
		delete(b.m, id)
	}
	for _, p := range changed {
		var c map[string]string
		for name, t := range p.Traits {
			if purpose, ok := strings.CutPrefix(name, "consent_"); ok {
				if s, ok := t.Value.(string); ok {
					if c == nil {
						c = map[string]string{}
					}
					c[purpose] = s
				}
			}
		}
		if c == nil {
			delete(b.m, p.ID)
		} else {
			b.m[p.ID] = c
		}
	}
}

// governed are the purposes that need a granted consent; any other purpose
// a segment declares (service, for a call back) is not consent-based.
var governed = map[string]bool{PurposeMarketing: true, PurposeAnalytics: true, PurposePersonalisation: true, PurposeThirdParty: true}

// Allows reports whether profileID may be used for purpose.
func (b *ConsentBook) Allows(purpose, profileID string) bool {
	purpose = NormalizePurpose(purpose)
	if !governed[purpose] {
		return true
	}
	b.mu.RLock()
	c := b.m[profileID]
	b.mu.RUnlock()
	if c[purpose] != Granted {
		return false
	}
	if purpose == PurposeMarketing {
		if s := c[AutomatedDecision]; s == Denied || s == Withdrawn {
			return false // PIPL art. 24: no marketing by automated decision
		}
	}
	return true
}

// ConsentSource is the source of consent set through the API.
const ConsentSource = "consent-api"

// SetConsent records a consent decision for a profile through the log (a
// "Consent Updated" event carrying one of the profile's identifiers), so it
// has provenance, replays, and wins or loses by time like any other.
func (s *Service) SetConsent(ctx context.Context, profileID, purpose, state, by string) (*portrait.Trait, error) {
	purpose, state = NormalizePurpose(purpose), strings.ToLower(strings.TrimSpace(state))
	if purpose == "" || len(purpose) > 64 {
		return nil, portrait.Errorf(portrait.EINVALID, "purpose is required (marketing, analytics, personalisation, third_party, automated_decision, or your own)")
	}
	if state != Granted && state != Denied && state != Withdrawn {
		return nil, portrait.Errorf(portrait.EINVALID, "state must be granted, denied or withdrawn")
	}
	if s.Log == nil {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "consent cannot be recorded on this server")
	}
	pr, err := s.Store.Profile(ctx, profileID)
	if err != nil {
		return nil, err
	}
	if len(pr.Identifiers) == 0 {
		return nil, portrait.Errorf(portrait.ECONFLICT, "profile %s has no identifier to attach consent to", pr.ID)
	}
	id := pr.Identifiers[0]
	now := s.now()
	ctxJSON, _ := json.Marshal(map[string]any{"externalIds": []map[string]string{{"id": id.Value, "type": id.Type}}})
	props, _ := json.Marshal(map[string]string{"purpose": purpose, "state": state, "set_by": by})
	e := &portrait.Event{MessageID: "consent-" + newID(), Type: portrait.EventTrack, Name: "Consent Updated", Source: ConsentSource,
		Context: ctxJSON, Properties: props, Timestamp: now, ReceivedAt: now}
	if _, err := s.Log.Append(ctx, []*portrait.Event{e}, nil); err != nil {
		return nil, err
	}
	if err := s.audit(ctx, "consent.set", by, pr.ID, map[string]any{"purpose": purpose, "state": state}); err != nil {
		return nil, err
	}
	return &portrait.Trait{Value: state, Source: ConsentSource, Time: now, MessageID: e.MessageID}, nil
}

// Consent returns a profile's consent traits by purpose.
func (s *Service) Consent(ctx context.Context, profileID string) (map[string]portrait.Trait, error) {
	pr, err := s.Store.Profile(ctx, profileID)
	if err != nil {
		return nil, err
	}
	out := map[string]portrait.Trait{}
	for name, t := range pr.Traits {
		if purpose, ok := strings.CutPrefix(name, "consent_"); ok {
			out[purpose] = t
		}
	}
	return out, nil
}
