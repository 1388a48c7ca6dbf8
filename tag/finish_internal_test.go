package tag

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// Finish gives what evaluating every tag afresh gives, keeping the
// profile's list (the same slice) when it would be written the same, over
// random changes of a profile's traits between evaluations.
func TestFinishKeepsAnUnchangedList(t *testing.T) {
	types := map[string]string{"a": traits.TypeNumber, "b": traits.TypeNumber}
	var tags []*Compiled
	for i := range 12 {
		c, err := Compile(Definition{Name: fmt.Sprintf("t%02d", i), Dimension: "value", Expression: fmt.Sprintf([]string{"a > %d", "b >= %d", "a > %d && b > 2"}[i%3], i%5)}, types)
		if err != nil {
			t.Fatal(err)
		}
		tags = append(tags, c)
	}
	e := NewEnricher()
	e.SetTags(tags, types)
	r := rand.New(rand.NewPCG(3, 4))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &portrait.Profile{ID: "p", Traits: map[string]portrait.Trait{}, FirstSeen: t0}
	for round := range 300 {
		now := t0.Add(time.Duration(round) * time.Hour)
		if r.IntN(2) == 0 { // sometimes nothing changes
			name := []string{"a", "b"}[r.IntN(2)]
			p.Traits[name] = portrait.Trait{Value: float64(r.IntN(7)), Time: now}
		}
		before := p.Tags
		// What Finish gave before: every tag that holds, newly held ones
		// dated by since, kept ones keeping their time.
		kept := map[string]time.Time{}
		for _, g := range before {
			kept[g.Name] = g.Since
		}
		var want []portrait.ProfileTag
		for _, c := range tags {
			env := map[string]any{"a": nil, "b": nil}
			for k, tr := range p.Traits {
				env[k] = tr.Value
			}
			res, err := vm.Run(c.program, env)
			if ok, _ := res.(bool); err != nil || !ok {
				continue
			}
			at, was := kept[c.Name]
			if !was {
				at = since(c, p, now)
			}
			want = append(want, portrait.ProfileTag{Name: c.Name, Since: at})
		}
		sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
		e.Finish(p, now)
		if !reflect.DeepEqual(p.Tags, want) {
			t.Fatalf("round %d: tags %v, want %v", round, p.Tags, want)
		}
		if reflect.DeepEqual(before, want) && len(want) > 0 && &p.Tags[0] != &before[0] {
			t.Fatalf("round %d: an unchanged list was written again", round)
		}
	}
}
