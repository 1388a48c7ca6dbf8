package sqlite

import (
	"sort"
	"time"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
)

// profileDoc is the stored form of a profile: the domain type plus the
// canonical keys the processor orders by, which clients never see.
type profileDoc struct {
	*portrait.Profile
	FirstTime time.Time                  `json:"_first_time"`
	FirstMsg  string                     `json:"_first_msg"`
	LastTime  time.Time                  `json:"_last_time"`
	LastMsg   string                     `json:"_last_msg"`
	IDTime    time.Time                  `json:"_id_time"`
	IDMsg     string                     `json:"_id_msg"`
	MergeTime *time.Time                 `json:"_merge_time,omitempty"`
	MergeMsg  string                     `json:"_merge_msg,omitempty"`
	State     map[string]json.RawMessage `json:"_state,omitempty"` // read only: encodeProfile appends it
}

func encodeProfile(p *portrait.Profile) ([]byte, error) {
	d := profileDoc{Profile: p, FirstTime: p.FirstKey.Time, FirstMsg: p.FirstKey.MessageID, LastTime: p.LastKey.Time, LastMsg: p.LastKey.MessageID,
		IDTime: p.IdentityKey.Time, IDMsg: p.IdentityKey.MessageID}
	if m := p.MergeKey; !m.Time.IsZero() || m.MessageID != "" {
		d.MergeTime, d.MergeMsg = &m.Time, m.MessageID
	}
	b, err := json.Marshal(d)
	if err != nil || len(p.State) == 0 {
		return b, err
	}
	// The enrichers' state is appended as it is: it is JSON they encoded
	// themselves (or that was read back from here), and letting
	// json.Marshal re-validate it would scan the largest part of the
	// document once more on every write.
	keys := make([]string, 0, len(p.State))
	for k := range p.State {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]byte, 0, len(b)+64)
	out = append(out, b[:len(b)-1]...) // without the closing brace
	out = append(out, `,"_state":{`...)
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		kb, _ := json.Marshal(k)
		out = append(out, kb...)
		out = append(out, ':')
		if v := p.State[k]; len(v) > 0 {
			out = append(out, v...)
		} else {
			out = append(out, "null"...)
		}
	}
	return append(out, '}', '}'), nil
}

func decodeProfile(b []byte) (*portrait.Profile, error) {
	d := profileDoc{Profile: new(portrait.Profile)}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	d.Profile.FirstKey = portrait.EventKey{Time: d.FirstTime, MessageID: d.FirstMsg}
	d.Profile.LastKey = portrait.EventKey{Time: d.LastTime, MessageID: d.LastMsg}
	d.Profile.IdentityKey = portrait.EventKey{Time: d.IDTime, MessageID: d.IDMsg}
	if d.MergeTime != nil {
		d.Profile.MergeKey = portrait.EventKey{Time: *d.MergeTime, MessageID: d.MergeMsg}
	}
	d.Profile.State = d.State
	if d.Profile.Traits == nil {
		d.Profile.Traits = map[string]portrait.Trait{}
	}
	if d.Profile.EventCounts == nil {
		d.Profile.EventCounts = map[string]int{}
	}
	return d.Profile, nil
}
