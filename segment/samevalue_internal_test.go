package segment

import (
	"slices"
	"testing"

	"github.com/portrait-cdp/portrait"
)

// Object-valued traits (needs evidence, journey history entries) are
// written again as new objects whenever a profile is finished: the index
// compares them by content, so an unchanged one is no change and a
// changed one is (issue 12 §5).
func TestUpsertComparesObjectsByContent(t *testing.T) {
	ix := NewIndex()
	obj := func(score float64) map[string]any {
		return map[string]any{"need": map[string]any{"score": score, "events": []any{"m1", "m2"}, "note": nil}}
	}
	hist := func(stage string) []any {
		return []any{map[string]any{"stage": "aware"}, map[string]any{"stage": stage}}
	}
	p := &portrait.Profile{ID: "a", Traits: map[string]portrait.Trait{
		"evidence": {Value: obj(1.5)}, "history": {Value: hist("buy")},
	}}
	if keys := ix.Upsert(p, nil); !slices.Contains(keys, "trait:evidence") || !slices.Contains(keys, "trait:history") {
		t.Fatalf("first upsert changed %v, want both traits", keys)
	}
	// Same content in new objects: nothing changed.
	p.Traits = map[string]portrait.Trait{"evidence": {Value: obj(1.5)}, "history": {Value: hist("buy")}}
	if keys := ix.Upsert(p, nil); len(keys) != 0 {
		t.Errorf("same content as new objects changed %v, want none", keys)
	}
	// A nested value differs: that trait changed, the other did not.
	p.Traits = map[string]portrait.Trait{"evidence": {Value: obj(2)}, "history": {Value: hist("buy")}}
	if keys := ix.Upsert(p, nil); !slices.Equal(keys, []string{"trait:evidence"}) {
		t.Errorf("nested score changed: keys %v, want [trait:evidence]", keys)
	}
	p.Traits = map[string]portrait.Trait{"evidence": {Value: obj(2)}, "history": {Value: hist("loyal")}}
	if keys := ix.Upsert(p, nil); !slices.Equal(keys, []string{"trait:history"}) {
		t.Errorf("list entry changed: keys %v, want [trait:history]", keys)
	}
	// A key more, a key fewer, a null against a value.
	for _, v := range []map[string]any{
		{"need": map[string]any{"score": 2.0, "events": []any{"m1", "m2"}, "note": nil, "x": 1.0}},
		{"need": map[string]any{"score": 2.0, "events": []any{"m1", "m2"}}},
		{"need": map[string]any{"score": 2.0, "events": []any{"m1", "m2"}, "note": "n"}},
	} {
		p.Traits = map[string]portrait.Trait{"evidence": {Value: v}, "history": {Value: hist("loyal")}}
		if keys := ix.Upsert(p, nil); !slices.Equal(keys, []string{"trait:evidence"}) {
			t.Errorf("evidence %v: keys %v, want [trait:evidence]", v, keys)
		}
	}
	if got := ix.traits["evidence"].valueAt(0).(map[string]any)["need"].(map[string]any)["note"]; got != "n" {
		t.Errorf("index holds note %v, want the last value n", got)
	}
}
