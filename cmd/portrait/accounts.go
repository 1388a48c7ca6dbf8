package main

import (
	"context"
	"embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/postgres"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/tag"
)

// wireAccounts serves corporate accounts (issue 16); startAccounts runs the
// follower that derives them from the log.
func (a *App) wireAccounts() {
	svc := account.NewService(a.DB, a.DB, time.Now)
	svc.Notify, svc.Logger = a.DB.Appended, a.Log
	a.HTTP.Accounts = svc
	if a.Proc != nil {
		// Event retention carries the accounts forward too.
		a.Proc.Accounts = svc.Model
	}
	if a.erasure != nil {
		// An erasure made here makes the accounts forget the person.
		a.erasure.Derived = append(a.erasure.Derived, svc)
	}
	if a.suppressor != nil {
		// One made through another node, or one whose forget failed
		// before a restart: the follower finds the person in the
		// suppression list (reloaded from the shared store on nodes).
		svc.Erased = a.suppressor
	}
}

var (
	_ profile.AccountCarrier = (*account.Model)(nil)
	_ account.Carried        = (*sqlite.DB)(nil)
	_ account.Carried        = (*postgres.DB)(nil)
)

func (a *App) startAccounts(ctx context.Context) {
	if a.HTTP.Accounts == nil {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.HTTP.Accounts.Run(ctx)
	}()
}

// runBenchAccounts times ranking N accounts by ICP score on the embedded
// store: the accounts are written to a fresh store's log as group,
// identify and activity calls, loaded back by the follower, then ranked
// (every score computed, then sorted) against a baseline measured in the
// same run, alternating: sorting the same accounts by one precomputed
// number.
func runBenchAccounts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench accounts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("accounts", 100_000, "accounts to rank")
	rounds := fs.Int("rounds", 5, "alternating rounds of ranking and baseline")
	dir := fs.String("data", "", "data directory (default: a temporary one, removed after)")
	store := fs.String("store", "", "store URL to write the accounts to (postgres://… of an empty scratch database; default: the embedded store under --data)")
	asJSON := fs.Bool("json", false, "machine-readable output")
	if err := fs.Parse(args); err != nil || *n < 1 || *rounds < 1 {
		return errUsage
	}
	if *dir == "" && *store == "" {
		d, err := os.MkdirTemp("", "portrait-bench-accounts-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	db, err := openStore(ctx, *store, *dir)
	if err != nil {
		return err
	}
	defer db.Close()
	now := time.Now().UTC()
	start := time.Now()
	batch := make([]*portrait.Event, 0, 4000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := db.Append(ctx, batch, nil)
		batch = batch[:0]
		return err
	}
	inds := []string{"I651", "J662", "C397", "F523", "G543", "C272", "E471", "H621"}
	provs := []string{"北京市", "上海市", "广东省", "浙江省", "四川省", "湖北省"}
	for i := range *n {
		g := fmt.Sprintf("b-%06d", i)
		at := now.Add(-time.Duration(i%500) * time.Hour)
		tr, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("企业%06d", i), "industry": inds[i%len(inds)], "employees": 10 + (i*7919)%20000,
			"revenue": float64((i*104729)%1000) * 1e6, "province": provs[i%len(provs)]})
		who := fmt.Sprintf("bp-%06d", i)
		role, _ := json.Marshal(map[string]any{"buying_role": account.Roles[i%4], "level": account.Levels[i%4]})
		batch = append(batch,
			&portrait.Event{MessageID: g + "-g", Type: portrait.EventGroup, Source: "bench", UserID: who, GroupID: g, Traits: tr, Timestamp: at, ReceivedAt: now},
			&portrait.Event{MessageID: g + "-i", Type: portrait.EventIdentify, Source: "bench", UserID: who, Traits: role, Timestamp: at, ReceivedAt: now},
			&portrait.Event{MessageID: g + "-a", Type: portrait.EventTrack, Source: "bench", UserID: who, Name: "Sales Visit", Properties: []byte(`{"account_id":"` + g + `"}`), Timestamp: at, ReceivedAt: now})
		if len(batch) >= 3000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	writeMS := ms(time.Since(start))
	svc := account.NewService(db, db, time.Now)
	svc.Logger = newLogger("warn", stderr)
	start = time.Now()
	if err := svc.Load(ctx); err != nil {
		return err
	}
	loadMS := ms(time.Since(start))
	// A restart: the load saved the checkpoint; a new follower restores it
	// and reads no event.
	again := account.NewService(db, db, time.Now)
	again.Logger = svc.Logger
	start = time.Now()
	if err := again.Load(ctx); err != nil {
		return err
	}
	restartMS := ms(time.Since(start))
	if again.Read.Load() != 0 || again.Model.Len() != *n {
		return portrait.Errorf(portrait.EINTERNAL, "restart read %d events, restored %d of %d accounts", again.Read.Load(), again.Model.Len(), *n)
	}
	// The baseline: the same accounts sorted by one number each.
	keys := make([]float64, *n)
	for i := range keys {
		keys[i] = float64((i*104729)%1000) + float64(i)/float64(*n)
	}
	var rank, base, rankCPU []float64
	for range *rounds {
		t, c := time.Now(), cpuTime()
		ids := svc.Model.RankOnly()
		rank = append(rank, ms(time.Since(t)))
		rankCPU = append(rankCPU, ms(cpuTime()-c))
		if len(ids) != *n {
			return portrait.Errorf(portrait.EINTERNAL, "ranked %d of %d accounts", len(ids), *n)
		}
		t = time.Now()
		k := append([]float64(nil), keys...)
		sort.Float64s(k)
		base = append(base, ms(time.Since(t)))
	}
	out := map[string]any{"accounts": *n, "write_ms": math.Round(writeMS), "load_ms": math.Round(loadMS), "restart_ms": math.Round(restartMS), "events_read_by_load": svc.Read.Load(), "rank_ms": medianOf(rank), "rank_cpu_ms": medianOf(rankCPU), "baseline_ms": medianOf(base),
		"ratio": math.Round(medianOf(rank)/math.Max(medianOf(base), 0.001)*10) / 10, "rounds": *rounds, "rank_ms_all": rank, "baseline_ms_all": base}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintf(stdout, "accounts %d  write %.0f ms  load %.0f ms (%d events)  restart from the checkpoint %.0f ms (0 events)\nrank by icp_score  median %.1f ms, %.1f ms of CPU  (baseline: sort by one number %.1f ms, ratio %.1f×)\n",
		*n, writeMS, loadMS, svc.Read.Load(), restartMS, medianOf(rank), medianOf(rankCPU), medianOf(base), out["ratio"])
	return nil
}

// Industry templates (行业专营): a scorecard for accounts, tags and segments
// for people, per industry, embedded in the binary.
//
//go:embed templates/*.yaml
var templateFiles embed.FS

type template struct {
	Name        string             `yaml:"name"`
	Title       string             `yaml:"title"`
	Description string             `yaml:"description"`
	Scorecard   *account.Scorecard `yaml:"scorecard"`
	Tags        []struct {
		Name, Dimension, Category, Description, Expression string
		NameZh                                             string `yaml:"name_zh"`
		NameEn                                             string `yaml:"name_en"`
	} `yaml:"tags"`
	Segments []struct {
		Name, Description, Expression string
	} `yaml:"segments"`
}

func templates() (map[string]*template, error) {
	names, _ := templateFiles.ReadDir("templates")
	out := map[string]*template{}
	for _, f := range names {
		b, err := templateFiles.ReadFile(path.Join("templates", f.Name()))
		if err != nil {
			return nil, err
		}
		t := &template{}
		if err := yaml.Unmarshal(b, t); err != nil {
			return nil, portrait.Errorf(portrait.EINTERNAL, "template %s: %v", f.Name(), err)
		}
		out[t.Name] = t
	}
	return out, nil
}

// runTemplates: "portrait templates list" and "portrait templates load
// NAME": the scorecard (journalled like any account edit), the tags and the
// segments of one industry, into the data directory. Loading twice changes
// nothing: tags are redefined identically, segments of the same name kept.
func runTemplates(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ts, err := templates()
	if err != nil {
		return err
	}
	if len(args) == 0 || args[0] == "list" {
		var names []string
		for n := range ts {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(stdout, "%-18s %s — %s\n", n, ts[n].Title, ts[n].Description)
		}
		return nil
	}
	if args[0] != "load" || len(args) < 2 {
		fmt.Fprintln(stderr, "usage: portrait templates list | portrait templates load NAME [--data DIR]")
		return errUsage
	}
	t := ts[args[1]]
	if t == nil {
		var names []string
		for n := range ts {
			names = append(names, n)
		}
		sort.Strings(names)
		return portrait.Errorf(portrait.EINVALID, "no template %q; there are %s", args[1], strings.Join(names, ", "))
	}
	fs := flag.NewFlagSet("templates load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	cfg.flags(fs)
	if err := fs.Parse(args[2:]); err != nil {
		return errUsage
	}
	a, err := OpenApp(ctx, cfg, io.Discard)
	if err != nil {
		return err
	}
	defer a.Close()
	sum, err := a.loadTemplate(ctx, t)
	if err != nil {
		return err
	}
	if cfg.JSON {
		return json.NewEncoder(stdout).Encode(sum)
	}
	fmt.Fprintf(stdout, "template %s loaded: scorecard %v, %d tags, %d segments (%d already there)\n", t.Name, sum["scorecard"], sum["tags"], sum["segments"], sum["segments_kept"])
	return nil
}

func (a *App) loadTemplate(ctx context.Context, t *template) (map[string]any, error) {
	sum := map[string]any{"template": t.Name, "scorecard": false, "tags": 0, "segments": 0, "segments_kept": 0}
	if t.Scorecard != nil && a.HTTP.Accounts != nil {
		svc := a.HTTP.Accounts
		if !svc.Loaded() {
			if err := svc.Load(ctx); err != nil {
				return nil, err
			}
		}
		if err := svc.Edit(ctx, &account.Edit{Kind: account.EditScorecard, Scorecard: t.Scorecard, By: "template:" + t.Name}); err != nil {
			return nil, err
		}
		sum["scorecard"] = true
	}
	if a.Enrich != nil && a.Enrich.Tags != nil {
		for _, d := range t.Tags {
			if _, err := a.Enrich.Tags.Define(ctx, tag.Definition{Name: d.Name, Dimension: d.Dimension, Category: d.Category, NameZh: d.NameZh, NameEn: d.NameEn,
				Description: d.Description, Expression: d.Expression}); err != nil {
				return nil, fmt.Errorf("template %s, tag %s: %w", t.Name, d.Name, err)
			}
			sum["tags"] = sum["tags"].(int) + 1
		}
	}
	if a.HTTP.Segments != nil {
		have := map[string]bool{}
		for _, st := range a.HTTP.Segments.List() {
			have[st.Definition.Name] = true
		}
		for _, d := range t.Segments {
			if have[d.Name] {
				sum["segments_kept"] = sum["segments_kept"].(int) + 1
				continue
			}
			if _, err := a.HTTP.Segments.Create(ctx, &segment.Definition{Name: d.Name, Description: d.Description, Expression: d.Expression}); err != nil {
				return nil, fmt.Errorf("template %s, segment %s: %w", t.Name, d.Name, err)
			}
			sum["segments"] = sum["segments"].(int) + 1
		}
	}
	return sum, nil
}
