package profile_test

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
)

// revenueEnricher sums properties.revenue into a trait: it reads the
// decoded properties, which a yielding batch decodes up front and any
// other batch beside its sequential part.
type revenueEnricher struct{}

func (revenueEnricher) Event(p *portrait.Profile, e *portrait.Event, props map[string]any) {
	r, _ := props["revenue"].(float64)
	if r == 0 {
		return
	}
	if p.Traits == nil {
		p.Traits = map[string]portrait.Trait{}
	}
	t := p.Traits["revenue_total"]
	sum, _ := t.Value.(float64)
	p.Traits["revenue_total"] = portrait.Trait{Value: sum + r, Source: "computed", Time: t0}
}

func (revenueEnricher) Merge(keep, gone *portrait.Profile) {
	g, _ := gone.Traits["revenue_total"].Value.(float64)
	k, _ := keep.Traits["revenue_total"].Value.(float64)
	if g+k != 0 {
		keep.Traits["revenue_total"] = portrait.Trait{Value: g + k, Source: "computed", Time: t0}
	}
}

func (revenueEnricher) Finish(*portrait.Profile, time.Time) {}

// A batch that leaves a core to acknowledgements (fewer workers, the
// properties decoded up front, the state written after the enrichers)
// gives the same profiles as one on every core.
func TestYieldingBatchesGiveTheSameProfiles(t *testing.T) {
	var evs []*portrait.Event
	for i := range 3000 {
		u := i % 400
		e := ev(fmt.Sprintf("y-%d", i), portrait.EventTrack, fmt.Sprintf("u%d", u), fmt.Sprintf("a%d", u), time.Duration(i)*time.Second, "")
		e.Properties = []byte(fmt.Sprintf(`{"revenue":%d,"sku":"SKU-%d"}`, i%97, i%13))
		if i%5 == 0 {
			e.Type, e.Name = portrait.EventIdentify, ""
			e.Traits = []byte(fmt.Sprintf(`{"name":"王芳","email":"u%d@example.com","phone":"+86138%08d"}`, u, u))
		}
		evs = append(evs, e)
	}
	base := t.TempDir()
	run := func(name string, yield bool) map[string]string {
		e := open(t, filepath.Join(base, name))
		e.proc.Enrichers = []profile.Enricher{revenueEnricher{}}
		e.proc.BatchSize, e.proc.MaxBatchSize = 700, 700
		profile.SetYield(e.proc, yield)
		e.send(t, evs...)
		e.catchUp(t)
		return e.snapshot(t)
	}
	want := run("all-cores", false)
	got := run("yielding", true)
	if len(want) != 400 {
		t.Fatalf("%d profiles, want 400", len(want))
	}
	if !reflect.DeepEqual(got, want) {
		for id, w := range want {
			if got[id] != w {
				t.Fatalf("profile %s differs when batches yield:\n got %s\nwant %s", id, got[id], w)
			}
		}
		t.Fatalf("%d profiles when batches yield, %d otherwise", len(got), len(want))
	}
	with := 0
	for _, w := range want {
		if strings.Contains(w, `"revenue_total"`) {
			with++
		}
	}
	if with != len(want) {
		t.Fatalf("%d of %d profiles have the enricher's trait: the comparison would not cover the properties", with, len(want))
	}
}
