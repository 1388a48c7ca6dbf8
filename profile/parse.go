package profile

import (
	"fmt"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
)

// Reading an event: its payload's traits, properties and external ids,
// and the identifiers the rules find in them. Nothing here depends on
// the profiles, so it runs on all cores ahead of the sequential part.

// parsed is what the processor reads from an event's payload.
type parsed struct {
	bad     map[string]string // traits whose values could not be read, raw
	props   map[string]any    // decoded only when enrichers need them
	propsAt *map[string]any   // or decoded there, later (see apply)
	imputed map[string]string // trait → fill rule, for values an import imputed
	traits  map[string]any    // identify traits and context.traits
	once    map[string]any    // traits.$set_once
	extIDs  []portrait.Identifier
}

func parse(e *portrait.Event) parsed {
	var ps parsed
	// Malformed payloads cannot reach the log (the ingest checks they are
	// objects), but a store written by hand could hold one: ignore it
	// rather than stop the processor.
	if len(e.Context) > 0 {
		var c struct {
			Traits      json.RawMessage `json:"traits"`
			ExternalIDs []struct {
				ID   any    `json:"id"`
				Type string `json:"type"`
			} `json:"externalIds"`
			// An import marks the values its fill rules supplied.
			Import struct {
				Imputed []struct {
					Field string `json:"field"`
					Rule  string `json:"rule"`
				} `json:"imputed"`
			} `json:"import"`
		}
		if json.Unmarshal(e.Context, &c) == nil {
			if len(c.Traits) > 0 {
				ps.traits = decodeObject(c.Traits, &ps.bad)
			}
			for _, im := range c.Import.Imputed {
				if ps.imputed == nil {
					ps.imputed = map[string]string{}
				}
				ps.imputed[im.Field] = im.Rule
			}
			for _, x := range c.ExternalIDs {
				if x.Type != "" && x.ID != nil {
					ps.extIDs = append(ps.extIDs, portrait.Identifier{Type: x.Type, Value: fmt.Sprint(x.ID)})
				}
			}
		}
	}
	// Group traits describe the account, not the person.
	if len(e.Traits) > 0 && e.Type != portrait.EventGroup {
		if t := decodeObject(e.Traits, &ps.bad); ps.traits == nil {
			ps.traits = t
		} else {
			for k, v := range t {
				ps.traits[k] = v // the event's own traits win over context.traits
			}
		}
	}
	if so, ok := ps.traits["$set_once"].(map[string]any); ok {
		ps.once = so
		delete(ps.traits, "$set_once")
	}
	return ps
}

// decodeObject decodes a JSON object. JSON that is well formed can still
// hold a value Go cannot represent (a number such as 1e309): then each key
// is decoded on its own, so one bad value costs only that key, and the bad
// ones are reported in *bad (name → the raw value) instead of silently
// losing the whole object.
func decodeObject(raw json.RawMessage, bad *map[string]string) map[string]any {
	var m map[string]any
	if json.Unmarshal(raw, &m) == nil {
		return m
	}
	var parts map[string]json.RawMessage
	if json.Unmarshal(raw, &parts) != nil {
		return nil
	}
	m = make(map[string]any, len(parts))
	for k, v := range parts {
		var x any
		if json.Unmarshal(v, &x) != nil {
			if *bad == nil {
				*bad = map[string]string{}
			}
			(*bad)[k] = string(v)
			continue
		}
		m[k] = x
	}
	return m
}

// allTraits returns the traits to look for identifiers in.
func (ps parsed) allTraits() map[string]any {
	if len(ps.once) == 0 {
		return ps.traits
	}
	m := make(map[string]any, len(ps.traits)+len(ps.once))
	for k, v := range ps.once {
		m[k] = v
	}
	for k, v := range ps.traits {
		m[k] = v
	}
	return m
}

// prepared is an event's payload, decoded, and its identifiers.
type prepared struct {
	ps  parsed
	ids []portrait.Identifier
}

func (p *Processor) prepare(e *portrait.Event) prepared {
	pre := p.prepareIDs(e)
	if len(p.Enrichers) > 0 {
		pre.ps.props = decodeProps(e)
	}
	return pre
}

// prepareIDs is prepare without the properties.
func (p *Processor) prepareIDs(e *portrait.Event) prepared {
	if e.Type == portrait.EventRetained {
		return prepared{ids: baseIDs(e)}
	}
	ps := parse(e)
	ids, _ := p.Rules.Identifiers(e, ps.allTraits(), ps.extIDs)
	return prepared{ps, ids}
}

// decodeProps decodes the properties the enrichers see; one that cannot
// be read is left out.
func decodeProps(e *portrait.Event) map[string]any {
	if len(e.Properties) == 0 || e.System() {
		return nil
	}
	var bad map[string]string
	return decodeObject(e.Properties, &bad)
}
