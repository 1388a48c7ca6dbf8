package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/jobs"
	"github.com/portrait-cdp/portrait/demo"
)

type demoFlags struct {
	customers int
	seed      uint64
	asOf      string
}

func (d *demoFlags) flags(fs *flag.FlagSet) {
	fs.IntVar(&d.customers, "customers", 3000, "retail customers to generate")
	fs.Uint64Var(&d.seed, "seed", 1, "random seed (same seed and --as-of: same data)")
	fs.StringVar(&d.asOf, "as-of", "", "last day of the generated history, YYYY-MM-DD (default: today, UTC)")
}

type demoSummary struct {
	Customers   int      `json:"customers"`
	Accounts    int      `json:"accounts"`
	Duplicates  int      `json:"duplicates"`
	Events      int      `json:"events"`
	Accepted    int      `json:"accepted"`
	Deduped     int      `json:"-"`
	Duplicated  int      `json:"duplicates_sent"`
	Profiles    int      `json:"profiles"`
	SampleEmail string   `json:"sample_email"`
	URL         string   `json:"url"`
	Analyses    []string `json:"analytics_runs"`
}

// run generates the demo and sends it through the tracking API, exactly as
// an SDK would, then waits until profiles have caught up.
func (d *demoFlags) run(ctx context.Context, a *App, writeKey string, progress io.Writer) (*demoSummary, error) {
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
	ds := demo.Generate(d.seed, d.customers, asOf)
	sum := &demoSummary{Customers: ds.Customers, Accounts: ds.Accounts, Duplicates: ds.Duplicates, Events: len(ds.Events), SampleEmail: ds.SampleEmail, URL: a.HTTP.URL()}
	client := &http.Client{Timeout: 30 * time.Second}
	const batch = 100
	start := time.Now()
	for i := 0; i < len(ds.Events); i += batch {
		end := min(i+batch, len(ds.Events))
		body, err := json.Marshal(map[string]any{"batch": ds.Events[i:end], "sentAt": time.Now().UTC().Format(time.RFC3339Nano)})
		if err != nil {
			return nil, portrait.Wrap(err, "cannot encode demo batch")
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.HTTP.URL()+"/v1/batch", bytes.NewReader(body))
		req.SetBasicAuth(writeKey, "")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot send demo events")
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
			return nil, portrait.Errorf(portrait.EINTERNAL, "demo batch answered %d: %+v", resp.StatusCode, r.Rejected)
		}
		sum.Accepted += r.Accepted
		sum.Duplicated += r.Duplicates
		if progress != nil && (end == len(ds.Events) || (i/batch)%50 == 0) {
			fmt.Fprintf(progress, "\rdemo: sent %d/%d events", end, len(ds.Events))
		}
	}
	if progress != nil {
		fmt.Fprintf(progress, " in %s\n", time.Since(start).Round(time.Millisecond))
	}
	last, err := a.DB.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	for a.Proc.Checkpoint() < last {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Run the analyses now rather than at the schedule, so the demo's
	// profiles show lifetime value, next-best products, clusters and churn.
	for _, kind := range jobs.Kinds {
		run, err := a.Jobs.RunNow(ctx, kind, nil)
		if err != nil {
			fmt.Fprintf(progress, "demo: %s analysis did not run: %s\n", kind, portrait.ErrorMessage(err))
			continue
		}
		fmt.Fprintf(progress, "demo: %s analysis wrote %d profiles in %d ms\n", kind, run.Profiles, run.DurationMS)
		sum.Analyses = append(sum.Analyses, run.ID)
	}
	if last, err = a.DB.LastSeq(ctx); err != nil {
		return nil, err
	}
	for a.Proc.Checkpoint() < last {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if sum.Profiles, err = a.DB.CountProfiles(ctx); err != nil {
		return nil, err
	}
	return sum, nil
}
