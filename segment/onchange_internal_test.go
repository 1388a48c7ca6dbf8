package segment

import (
	"encoding/json"
	"testing"

	"github.com/portrait-cdp/portrait"
)

// The processor hook queues what the index keeps, taken from the whole
// profile, and not a copy of every enricher's state (kilobytes per changed
// profile per batch; issue 12 §5).
func TestOnChangeQueuesTheKeptValueNotTheState(t *testing.T) {
	ix := NewIndex()
	ix.SetKeep(func(p *portrait.Profile) any {
		if raw := p.State["survey"]; len(raw) > 0 {
			return string(raw)
		}
		return nil
	})
	svc := NewService(ix, nil)
	big := json.RawMessage(`{"purchases":[1,2,3]}`)
	with := &portrait.Profile{ID: "a", State: map[string]json.RawMessage{"survey": []byte(`{"nps":9}`), "traits": big}}
	without := &portrait.Profile{ID: "b", State: map[string]json.RawMessage{"traits": big}}
	svc.OnChange([]*portrait.Profile{with, without}, nil, nil)
	b := <-svc.queue
	for _, c := range b.changed {
		if c.State != nil {
			t.Errorf("profile %s queued with its state copied: %v", c.ID, c.State)
		}
	}
	if len(b.kept) != 2 || b.kept["a"] != `{"nps":9}` || b.kept["b"] != nil {
		t.Errorf("kept values queued: %v", b.kept)
	}

	// An index keeping nothing queues no kept values either.
	plain := NewService(NewIndex(), nil)
	plain.OnChange([]*portrait.Profile{with}, nil, nil)
	if b := <-plain.queue; b.kept != nil || b.changed[0].State != nil {
		t.Errorf("without SetKeep: kept %v, state %v", b.kept, b.changed[0].State)
	}
}
