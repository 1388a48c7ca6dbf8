package linkage

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"

	"github.com/portrait-cdp/portrait"
)

// Probable duplicates. The identity graph merges profiles that share an
// identifier, unless a rule forbids it: a second user_id is refused so that
// one shared phone cannot fuse a household. The refusal is journalled, and
// until now stayed there. When the two profiles share not one identifier
// but two of a person's (phone and e-mail) or a national id, they are far
// more likely one customer entered twice (another CRM id) than two people,
// and a person should see them: they are listed here, and in the summary of
// the import that produced them.

// JournalReader reads what probable duplicates are found from.
type JournalReader interface {
	// RefusedMerges lists the journal's refusals between two profiles
	// (entries of kind refused with both Into and From set).
	RefusedMerges(ctx context.Context) ([]*portrait.MergeEntry, error)
	// Profile follows merges: a merged-away id finds the survivor.
	Profile(ctx context.Context, id string) (*portrait.Profile, error)
	ReadLog(ctx context.Context, after int64, limit int) ([]*portrait.Event, error)
}

// deviceTypes identify a device or a session rather than a person: a shared
// tablet is no evidence that two customers are one.
var deviceTypes = map[string]bool{"anonymous_id": true, "device_id": true, "ip": true}

// probable says whether identifiers shared by two profiles make them one
// person: two different kinds of personal identifier, or a national id.
func probable(shared []portrait.Identifier) bool {
	types := map[string]bool{}
	for _, id := range shared {
		if id.Type == "id_card" {
			return true
		}
		if !deviceTypes[id.Type] {
			types[id.Type] = true
		}
	}
	return len(types) >= 2
}

// ProbableDuplicates lists the pairs of current profiles that a rule keeps
// apart although they share identifiers of one person. keep, when not nil,
// selects by the event whose refusal is journalled (for example the events
// of one import). Pairs are ordered by the refusing event.
func ProbableDuplicates(ctx context.Context, j JournalReader, keep func(*portrait.Event) bool) ([]*portrait.ProbableDuplicate, error) {
	refusals, err := j.RefusedMerges(ctx)
	if err != nil {
		return nil, err
	}
	type pairKey [2]string
	byPair := map[pairKey]*portrait.ProbableDuplicate{}
	current := map[string]string{} // journalled id → surviving profile id, "" if gone
	decided := map[pairKey]bool{}
	resolve := func(id string) (string, error) {
		if c, ok := current[id]; ok {
			return c, nil
		}
		p, err := j.Profile(ctx, id)
		switch {
		case portrait.ErrorCode(err) == portrait.ENOTFOUND:
			current[id] = ""
			return "", nil
		case err != nil:
			return "", err
		}
		current[id] = p.ID
		return p.ID, nil
	}
	for _, r := range refusals {
		if r.From == "" || r.Into == "" {
			continue
		}
		a, err := resolve(r.Into)
		if err != nil {
			return nil, err
		}
		b, err := resolve(r.From)
		if err != nil {
			return nil, err
		}
		if a == "" || b == "" || a == b {
			continue // erased, or merged since
		}
		if b < a {
			a, b = b, a
		}
		if strings.HasPrefix(r.Reason, portrait.KeptApartReason) {
			decided[pairKey{a, b}] = true // a person split them
			continue
		}
		d := byPair[pairKey{a, b}]
		if d == nil {
			d = &portrait.ProbableDuplicate{AProfile: a, BProfile: b, Reason: r.Reason, MessageID: r.MessageID, EventSeq: r.EventSeq, At: r.At}
			byPair[pairKey{a, b}] = d
		}
		if !slices.Contains(d.Shared, r.Identifier) {
			d.Shared = append(d.Shared, r.Identifier)
		}
	}
	var out []*portrait.ProbableDuplicate
	for k, d := range byPair {
		if decided[k] || !probable(d.Shared) {
			continue
		}
		if keep != nil {
			evs, err := j.ReadLog(ctx, d.EventSeq-1, 1)
			if err != nil {
				return nil, err
			}
			if len(evs) == 0 || evs[0].Seq != d.EventSeq || !keep(evs[0]) {
				continue
			}
		}
		sort.Slice(d.Shared, func(x, y int) bool {
			if d.Shared[x].Type != d.Shared[y].Type {
				return d.Shared[x].Type < d.Shared[y].Type
			}
			return d.Shared[x].Value < d.Shared[y].Value
		})
		out = append(out, d)
	}
	sort.Slice(out, func(x, y int) bool {
		if out[x].EventSeq != out[y].EventSeq {
			return out[x].EventSeq < out[y].EventSeq
		}
		return out[x].AProfile < out[y].AProfile
	})
	return out, nil
}

// FromImport selects the events an import wrote: its source and file, as
// the importer records them in the event's context.
func FromImport(source, file string) func(*portrait.Event) bool {
	return func(e *portrait.Event) bool {
		var c struct {
			Import struct {
				Source string `json:"source"`
				File   string `json:"file"`
			} `json:"import"`
		}
		if len(e.Context) == 0 || json.Unmarshal(e.Context, &c) != nil {
			return false
		}
		return c.Import.Source == source && strings.TrimSpace(c.Import.File) == strings.TrimSpace(file)
	}
}

// Report counts the duplicates and lists at most limit of them.
func Report(ds []*portrait.ProbableDuplicate, limit int) *portrait.DuplicateReport {
	r := &portrait.DuplicateReport{Count: len(ds), Pairs: ds}
	if limit >= 0 && len(ds) > limit {
		r.Pairs = ds[:limit]
	}
	if r.Pairs == nil {
		r.Pairs = []*portrait.ProbableDuplicate{}
	}
	return r
}
