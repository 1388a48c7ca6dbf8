package linkage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/linkage"
	"github.com/portrait-cdp/portrait/linkage/internal/synth"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

type linkEnv struct {
	db   *sqlite.DB
	proc *profile.Processor
	svc  *linkage.Service
}

func newLinkEnv(t *testing.T) *linkEnv {
	db, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	proc := profile.NewProcessor(db, identity.DefaultRules())
	proc.Standardize = clean.DefaultTraitStandardizer().Standardize
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	svc := &linkage.Service{Profiles: db, Store: db, Log: db, Now: func() time.Time { return now },
		Traits: []string{"first_name", "last_name", "address", "city", "postcode", "state", "birth_date", "soc_sec_id"}}
	return &linkEnv{db: db, proc: proc, svc: svc}
}

func (e *linkEnv) settle(t *testing.T) {
	last, err := e.db.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.proc.CatchUp(context.Background(), last); err != nil {
		t.Fatal(err)
	}
}

// FEBRL people arrive as identify calls from a system that gave each record
// its own anonymous id: nothing but the traits says two are one person.
// Linkage must find them, merge them through the identity graph, and an
// undo must split them again.
func TestDatasetLinkProfilesThroughTheIdentityGraph(t *testing.T) {
	dir := sharedData(t)
	f, err := os.Open(filepath.Join(dir, "febrl", "dataset1.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, recs, err := linkage.ReadCSV(f, "dataset1.csv")
	if err != nil {
		t.Fatal(err)
	}
	e := newLinkEnv(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var evs []*portrait.Event
	for i, r := range recs {
		traits := map[string]string{"first_name": r["given_name"], "last_name": r["surname"],
			"address": strings.TrimSpace(r["street_number"] + " " + r["address_1"] + " " + r["address_2"]),
			"city":    r["suburb"], "postcode": r["postcode"], "state": r["state"], "birth_date": r["date_of_birth"], "soc_sec_id": r["soc_sec_id"]}
		var parts []string
		for k, v := range traits {
			if v != "" {
				parts = append(parts, fmt.Sprintf("%q:%q", k, v))
			}
		}
		at := t0.Add(time.Duration(i) * time.Second)
		evs = append(evs, &portrait.Event{MessageID: "m-" + r["rec_id"], Type: "identify", Source: "crm", AnonymousID: r["rec_id"],
			Traits: []byte("{" + strings.Join(parts, ",") + "}"), Timestamp: at, ReceivedAt: at})
	}
	ctx := context.Background()
	if _, err := e.db.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	e.settle(t)
	res, err := e.svc.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.settle(t)
	if res.Linked == 0 {
		t.Fatalf("nothing linked: %+v", res)
	}

	// Score the profiles against the truth in the record ids.
	truth := regexp.MustCompile(`rec-(\d+)`)
	groups := map[string][]string{} // profile → truth labels of its records
	err = e.db.AllProfiles(ctx, func(p *portrait.Profile) error {
		for _, id := range p.Identifiers {
			if id.Type == "anonymous_id" {
				groups[p.ID] = append(groups[p.ID], truth.FindStringSubmatch(id.Value)[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var tp, predicted int
	for _, labels := range groups {
		for i := range labels {
			for j := i + 1; j < len(labels); j++ {
				predicted++
				if labels[i] == labels[j] {
					tp++
				}
			}
		}
	}
	const truePairs = 500
	precision, recall := float64(tp)/float64(max(predicted, 1)), float64(tp)/truePairs
	f1 := 2 * precision * recall / (precision + recall)
	t.Logf("linked %d, review %d; merged profiles: precision %.4f recall %.4f F1 %.4f", res.Linked, res.Review, precision, recall, f1)
	if f1 < 0.95 {
		t.Errorf("F1 %.4f through the identity graph, want >= 0.95", f1)
	}

	// A second run finds nothing new to link: linked pairs are remembered.
	again, err := e.svc.Run(ctx)
	if err != nil || again.Linked != 0 {
		t.Errorf("second run linked again: %+v %v", again, err)
	}

	// Rejecting a linked pair undoes the merge.
	linked, err := e.db.Candidates(ctx, linkage.Linked, 1)
	if err != nil || len(linked) == 0 {
		t.Fatalf("no linked candidates listed: %v", err)
	}
	c := linked[0]
	if _, err := e.svc.Reject(ctx, c.ID, "reviewer"); err != nil {
		t.Fatal(err)
	}
	e.settle(t)
	pa, _ := e.db.ProfileByIdentifier(ctx, c.A)
	pb, _ := e.db.ProfileByIdentifier(ctx, c.B)
	if pa == nil || pb == nil || pa.ID == pb.ID {
		t.Errorf("rejecting a linked pair did not split it")
	}
	// Accepting it again links it again.
	if _, err := e.svc.Accept(ctx, c.ID, "reviewer"); err != nil {
		t.Fatal(err)
	}
	e.settle(t)
	pa, _ = e.db.ProfileByIdentifier(ctx, c.A)
	pb, _ = e.db.ProfileByIdentifier(ctx, c.B)
	if pa.ID != pb.ID {
		t.Errorf("accepting the pair again did not merge it")
	}
	if _, err := e.svc.Accept(ctx, "no-such-pair", "reviewer"); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("unknown candidate: %v", err)
	}
}

// Distinct customers with common Chinese names arrive as identify calls;
// a linkage run over their profiles must link nobody, say that its model
// was not credible, and keep no model for later runs.
func TestServiceOnNullPopulationLinksNobody(t *testing.T) {
	e := newLinkEnv(t)
	e.svc.Traits = nil // the defaults: name, phone, email, city, ...
	pop := synth.Population(synth.Options{People: 1500, Seed: 7})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var evs []*portrait.Event
	for i, r := range pop {
		traits, _ := json.Marshal(r.Fields)
		at := t0.Add(time.Duration(i) * time.Second)
		evs = append(evs, &portrait.Event{MessageID: fmt.Sprintf("m-%d", i), Type: "identify", Source: "crm",
			UserID: fmt.Sprintf("cust-%05d", i), Traits: traits, Timestamp: at, ReceivedAt: at})
	}
	ctx := context.Background()
	if _, err := e.db.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	e.settle(t)
	res, err := e.svc.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Profiles != len(pop) || res.Linked != 0 || res.Matches != 0 {
		t.Errorf("run over %d distinct customers: %+v", len(pop), res)
	}
	if res.ModelCredible || res.ModelWarning == "" {
		t.Errorf("the run did not say its model was not credible: %+v", res)
	}
	if m, err := e.db.LoadModel(ctx); err != nil || m != nil {
		t.Errorf("a model that is not credible was saved: %v %v", m, err)
	}
	if ds, err := e.svc.Duplicates(ctx); err == nil || len(ds) != 0 {
		t.Errorf("duplicates without a journal: %v %v", ds, err)
	}
}
