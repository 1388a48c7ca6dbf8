package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/jobs"
	"github.com/portrait-cdp/portrait/demo"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/tag"
)

type demoFlags struct {
	customers  int
	seed       uint64
	asOf       string
	cpuProfile string
}

func (d *demoFlags) flags(fs *flag.FlagSet) {
	fs.IntVar(&d.customers, "customers", 3000, "retail customers to generate")
	fs.Uint64Var(&d.seed, "seed", 1, "random seed (same seed and --as-of: same data)")
	fs.StringVar(&d.asOf, "as-of", "", "last day of the generated history, YYYY-MM-DD (default: today, UTC)")
	fs.StringVar(&d.cpuProfile, "cpuprofile", "", "write a CPU profile of the demo's start-up (generation to ready) to this file")
}

type demoSummary struct {
	Customers   int      `json:"customers"`
	Accounts    int      `json:"accounts"`
	Duplicates  int      `json:"offline_duplicates"` // customers who also buy offline, merged by phone
	Events      int      `json:"events"`
	Accepted    int      `json:"accepted"`
	Duplicated  int      `json:"events_already_logged"`
	Profiles    int      `json:"profiles"`
	SampleEmail string   `json:"sample_email"`
	URL         string   `json:"url"`
	Console     string   `json:"console_url"`
	SignInLink  string   `json:"signin_link,omitempty"` // one-time, valid minutes
	Analyses    []string `json:"analytics_runs"`
}

// run generates the demo and sends it through the tracking API, exactly as
// the SDKs and exports would, each source with its own write key, then
// waits until profiles have caught up.
func (d *demoFlags) run(ctx context.Context, a *App, keys *demoKeys, progress io.Writer) (*demoSummary, error) {
	asOf := time.Now().UTC().Truncate(24 * time.Hour)
	if d.asOf != "" {
		t, err := time.Parse("2006-01-02", d.asOf)
		if err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "--as-of must be YYYY-MM-DD")
		}
		asOf = t.Add(24*time.Hour - time.Second)
	}
	if d.customers < 1 {
		return nil, portrait.Errorf(portrait.EINVALID, "--customers must be at least 1")
	}
	timer := newPhaseTimer(progress)
	ds := demo.Generate(d.seed, d.customers, asOf)
	timer.done("generated")
	sum := &demoSummary{Customers: ds.Customers, Accounts: ds.Accounts, Duplicates: ds.Duplicates, Events: len(ds.Events), SampleEmail: ds.SampleEmail, URL: a.HTTP.URL()}
	client := &http.Client{Timeout: 30 * time.Second}
	const batch = 100
	start := time.Now()
	// Events go out in time order, each source batching its own.
	pending := map[string][]map[string]any{}
	sent, batches := 0, 0
	lines := newLineProgress(progress)
	send := func(src string) error {
		evs := pending[src]
		if len(evs) == 0 {
			return nil
		}
		pending[src] = nil
		body, err := json.Marshal(map[string]any{"batch": evs, "sentAt": time.Now().UTC().Format(time.RFC3339Nano)})
		if err != nil {
			return portrait.Wrap(err, "cannot encode demo batch")
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.HTTP.URL()+"/v1/batch", bytes.NewReader(body))
		req.SetBasicAuth(keys.Sources[src], "")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return portrait.Wrap(err, "cannot send demo events")
		}
		var r struct {
			Accepted   int `json:"accepted"`
			Duplicates int `json:"duplicates"`
			Rejected   []struct {
				Index  int    `json:"index"`
				Reason string `json:"reason"`
			} `json:"rejected"`
		}
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return portrait.Errorf(portrait.EINTERNAL, "demo batch from %s answered %d: %+v", src, resp.StatusCode, r.Rejected)
		}
		sum.Accepted += r.Accepted
		sum.Duplicated += r.Duplicates
		sent += len(evs)
		batches++
		if final := sent == len(ds.Events); final {
			lines.update(fmt.Sprintf("demo: sent %d/%d events in %s", sent, len(ds.Events), time.Since(start).Round(time.Millisecond)), true)
		} else if batches%50 == 0 {
			lines.update(fmt.Sprintf("demo: sent %d/%d events", sent, len(ds.Events)), false)
		}
		return nil
	}
	for _, e := range ds.Events {
		src := demo.SourceOf(e)
		pending[src] = append(pending[src], e)
		if len(pending[src]) == batch {
			if err := send(src); err != nil {
				return nil, err
			}
		}
	}
	for _, src := range demo.Sources {
		if err := send(src); err != nil {
			return nil, err
		}
	}
	timer.done("events sent")
	if err := caughtUp(ctx, a); err != nil {
		return nil, err
	}
	timer.done("events processed")
	// RFM quintiles need the whole population: computed at start only when
	// someone had bought, and then daily, the demo's profiles would have no
	// RFM scores until tomorrow.
	if a.Enrich != nil && a.Enrich.Traits != nil {
		b, err := a.Enrich.Traits.RecomputeRFM(ctx)
		switch {
		case err != nil:
			fmt.Fprintf(progress, "demo: RFM boundaries not computed: %s\n", portrait.ErrorMessage(err))
		case b != nil:
			fmt.Fprintf(progress, "demo: RFM boundaries computed, profiles re-scored\n")
		}
		timer.done("RFM")
	}
	// Run the analyses now rather than at the schedule, so the demo's
	// profiles show lifetime value, next-best products, clusters and churn.
	runs, errs := a.Jobs.RunEachNow(ctx, jobs.Kinds)
	for i, kind := range jobs.Kinds {
		run, err := runs[i], errs[i]
		if err != nil {
			fmt.Fprintf(progress, "demo: %s analysis did not run: %s\n", kind, portrait.ErrorMessage(err))
			continue
		}
		fmt.Fprintf(progress, "demo: %s analysis wrote %d profiles in %d ms\n", kind, run.Profiles, run.DurationMS)
		sum.Analyses = append(sum.Analyses, run.ID)
	}
	timer.done("analyses")
	// The analyses' results must be on the profiles (and their traits in
	// the schema) before tags can name them.
	if err := caughtUp(ctx, a); err != nil {
		return nil, err
	}
	timer.done("analyses applied")
	if err := demoPortraits(ctx, a, progress); err != nil {
		return nil, err
	}
	if err := caughtUp(ctx, a); err != nil {
		return nil, err
	}
	timer.done("tags and segments")
	var err error
	if sum.Profiles, err = a.DB.CountProfiles(ctx); err != nil {
		return nil, err
	}
	a.HTTP.Prime() // console speed: the first visits find the quality report of the loaded data ready
	timer.done("primed")
	timer.total()
	return sum, nil
}

// demoPortraits defines the tags and segments a marketing team would start
// with, so the demo's profiles read as portraits (高价值, 即将流失 ...) and
// its segments have members. They go through the same services as the API.
func demoPortraits(ctx context.Context, a *App, progress io.Writer) error {
	if a.Enrich != nil && a.Enrich.Tags != nil {
		for _, d := range []tag.Definition{
			{Name: "high_value", NameZh: "高价值", NameEn: "High value", Dimension: "value", Category: "spend",
				Expression: "clv_percentile >= 80", Description: "top fifth of buyers by predicted 12-month value (clv_12m)"},
			{Name: "churn_risk", NameZh: "即将流失", NameEn: "Churn risk", Dimension: "risk", Category: "retention",
				Expression: "churn_probability >= 0.7 && purchase_count >= 2", Description: "a repeat buyer unlikely to buy in the next 90 days"},
			{Name: "loyal", NameZh: "忠诚客户", NameEn: "Loyal", Dimension: "behaviour", Category: "lifecycle",
				Expression: `lifecycle_stage == "loyal"`},
			{Name: "promoter", NameZh: "推荐者", NameEn: "Promoter", Dimension: "feedback", Category: "nps",
				Expression: `nps_category == "promoter"`},
			{Name: "detractor", NameZh: "贬损者", NameEn: "Detractor", Dimension: "feedback", Category: "nps",
				Expression: `nps_category == "detractor"`},
		} {
			if _, err := a.Enrich.Tags.Define(ctx, d); err != nil {
				fmt.Fprintf(progress, "demo: tag %s not defined: %s\n", d.Name, portrait.ErrorMessage(err))
			}
		}
		if err := a.Enrich.Tags.BackfillNow(ctx, "demo"); err != nil {
			fmt.Fprintf(progress, "demo: tag backfill: %s\n", portrait.ErrorMessage(err))
		}
	}
	if a.HTTP.Segments != nil {
		have := map[string]bool{} // a demo started again keeps its segments
		for _, st := range a.HTTP.Segments.List() {
			have[st.Name] = true
		}
		for _, d := range []segment.Definition{
			{Name: "高价值活跃客户 High value, active", Expression: `"high_value" in tags && traits.days_since_last_purchase < 90`},
			{Name: "即将流失的高价值客户 High value at risk", Expression: `"high_value" in tags && "churn_risk" in tags`},
			{Name: "京沪钻石会员 Beijing/Shanghai diamond members", Expression: `traits.province in ["北京市", "上海市"] && traits.member_level == "钻石 Diamond"`},
			{Name: "近30天下单2次以上 2+ orders in 30 days", Expression: `event_count("Order Completed", "30d") >= 2`},
			{Name: "贬损者回访 Detractors to call back", Expression: `"detractor" in tags`, Purpose: "service"},
		} {
			if have[d.Name] {
				continue
			}
			if _, err := a.HTTP.Segments.Create(ctx, &d); err != nil {
				fmt.Fprintf(progress, "demo: segment %q not created: %s\n", d.Name, portrait.ErrorMessage(err))
			}
		}
	}
	return nil
}

// startCPUProfile profiles the process into path until stop is called
// (nothing when path is empty): where the demo's start-up spends its CPU.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot create the profile file")
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, portrait.Wrap(err, "cannot start the CPU profile")
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// phaseTimer prints how long each start-up phase took, in wall time and
// in the process's CPU: on a loaded machine only the CPU says what a phase
// costs.
type phaseTimer struct {
	w        io.Writer
	at       time.Time
	cpu      float64
	from     time.Time
	firstCPU float64
}

func newPhaseTimer(w io.Writer) *phaseTimer {
	now, cpu := time.Now(), cpuSeconds()
	return &phaseTimer{w: w, at: now, cpu: cpu, from: now, firstCPU: cpu}
}

func (p *phaseTimer) done(phase string) {
	now, cpu := time.Now(), cpuSeconds()
	fmt.Fprintf(p.w, "demo: %s: %.1f s wall, %.1f s CPU\n", phase, now.Sub(p.at).Seconds(), cpu-p.cpu)
	p.at, p.cpu = now, cpu
}

func (p *phaseTimer) total() {
	fmt.Fprintf(p.w, "demo: ready in %.1f s wall, %.1f s CPU\n", time.Since(p.from).Seconds(), cpuSeconds()-p.firstCPU)
}

// caughtUp waits until the processor has applied the whole log.
func caughtUp(ctx context.Context, a *App) error {
	last, err := a.DB.LastSeq(ctx)
	if err != nil {
		return err
	}
	for a.Proc.Checkpoint() < last {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// consoleLink adds the console's address and a one-time sign-in link to the
// summary, so that a newcomer lands on a signed-in console in one click.
func consoleLink(ctx context.Context, a *App, admin string, sum *demoSummary, stdout io.Writer, text bool) {
	sum.Console = a.HTTP.URL() + "/"
	link, err := a.HTTP.SignInLink(ctx, admin)
	if err != nil {
		fmt.Fprintf(stdout, "console: %s (no sign-in link: %s)\n", sum.Console, portrait.ErrorMessage(err))
		return
	}
	sum.SignInLink = link
	if text {
		fmt.Fprintf(stdout, "console: %s\n  sign in with this one-time link (valid 10 minutes): %s\n", sum.Console, link)
	}
}
