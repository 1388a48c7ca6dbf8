package storeseal_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
)

// memTables is a store's tables in memory: each phase's rows by key.
type memTables struct {
	rows   map[string][]storeseal.Row
	writes []string // phase, the job's phase as kept, next phase, rewrites
}

func (m *memTables) RaiseRows(_ context.Context, phase, _, _, after string, limit int) ([]storeseal.Row, error) {
	var out []storeseal.Row
	for _, r := range m.rows[phase] {
		if r.Key > after && !datakey.IsSealed(string(r.Cols[0])) && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memTables) RaiseWrite(_ context.Context, phase string, j storeseal.Job, rws []storeseal.Rewrite, next storeseal.Job, done bool) error {
	m.writes = append(m.writes, fmt.Sprintf("%s %s→%s %d %v", phase, j.Phase, next.Phase, len(rws), done))
	for _, w := range rws {
		for i, r := range m.rows[phase] {
			if r.Key == w.Key && reflect.DeepEqual(r.Cols, w.Old) {
				m.rows[phase][i].Cols = w.New
			}
		}
	}
	return nil
}

type levels map[string]bool

func (l levels) SecretTrait(n string) bool      { return l[n] }
func (l levels) SecretIdentifier(n string) bool { return l[n] }

func ringOf(t *testing.T) *datakey.Ring {
	line, err := datakey.NewKeyLine("k1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := datakey.Parse([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPhases: the phases of each kind, in order; a job kept by an earlier
// version in phase "rows" resumes as the first of the value rows, its
// progress matched as kept; a page of values the levels no longer seal
// (the name lowered again) moves on instead of reading the same page for
// ever.
func TestPhases(t *testing.T) {
	walk := func(kind string) []string {
		var out []string
		for p := storeseal.PhaseEvents; p != ""; p = storeseal.Next(kind, p) {
			out = append(out, p)
		}
		return out
	}
	blobs := "quarantine imports segment_dead_letters account_edits account_state"
	if got := strings.Join(walk("identifier"), " "); got != "events profiles linkage_candidates identities refused merges splits "+blobs {
		t.Errorf("identifier phases: %s", got)
	}
	if got := strings.Join(walk("trait"), " "); got != "events profiles linkage_candidates trait_issues "+blobs {
		t.Errorf("trait phases: %s", got)
	}

	ctx := context.Background()
	m := &memTables{rows: map[string][]storeseal.Row{
		storeseal.PhaseIdentities: {{Key: "a@example.com", Cols: [][]byte{[]byte("a@example.com")}}},
	}}
	s := &datakey.Sealer{Ring: ringOf(t), Levels: levels{"email": true}}
	next, done, err := storeseal.Step(ctx, m, s, storeseal.Job{Kind: "identifier", Name: "email", Phase: storeseal.PhaseRows})
	if err != nil || done || next.Phase != storeseal.PhaseRefused {
		t.Fatalf("an old job's rows step: %+v %v %v", next, done, err)
	}
	if want := "identities rows→refused 1 false"; m.writes[0] != want {
		t.Errorf("write %q, want %q", m.writes[0], want)
	}
	if v := string(m.rows[storeseal.PhaseIdentities][0].Cols[0]); !datakey.IsSealed(v) {
		t.Errorf("the identity was not sealed: %s", v)
	}

	// A full page the levels leave alone: on to the next phase.
	m = &memTables{rows: map[string][]storeseal.Row{}}
	for i := range storeseal.Batch {
		v := fmt.Sprintf("v%04d@example.com", i)
		m.rows[storeseal.PhaseIdentities] = append(m.rows[storeseal.PhaseIdentities], storeseal.Row{Key: v, Cols: [][]byte{[]byte(v)}})
	}
	s = &datakey.Sealer{Ring: ringOf(t), Levels: levels{}}
	next, _, err = storeseal.Step(ctx, m, s, storeseal.Job{Kind: "identifier", Name: "email", Phase: storeseal.PhaseIdentities})
	if err != nil || next.Phase != storeseal.PhaseRefused {
		t.Fatalf("a page with nothing to seal: %+v %v", next, err)
	}
	// Sealed, a full page is read again from the start (nothing kept).
	s = &datakey.Sealer{Ring: ringOf(t), Levels: levels{"email": true}}
	next, _, err = storeseal.Step(ctx, m, s, storeseal.Job{Kind: "identifier", Name: "email", Phase: storeseal.PhaseIdentities})
	if err != nil || next.Phase != storeseal.PhaseIdentities || next.After != "" {
		t.Fatalf("a full page sealed: %+v %v", next, err)
	}
	if next, _, err = storeseal.Step(ctx, m, s, next); err != nil || next.Phase != storeseal.PhaseRefused {
		t.Fatalf("after the page: %+v %v", next, err)
	}
}
