package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
)

type rebuildResult struct {
	Events     int64   `json:"events"`
	Profiles   int     `json:"profiles"`
	Seconds    float64 `json:"seconds"`
	EventsPerS float64 `json:"events_per_second"`
	Before     string  `json:"digest_before"`
	After      string  `json:"digest_after"`
	Identical  bool    `json:"identical"`
	// Accounts are rebuilt too: the state restored from their checkpoint
	// against a full replay of the log and the edits.
	Accounts          int    `json:"accounts"`
	AccountsBefore    string `json:"accounts_digest_before"`
	AccountsAfter     string `json:"accounts_digest_after"`
	AccountsIdentical bool   `json:"accounts_identical"`
	// TagSinceChanged counts tags whose since differs after the rebuild.
	// A tag keeps the time it was first seen to hold while it holds; a
	// replay sees the history in other batches than live processing did,
	// so it may first see a tag hold at another point. The digests leave
	// since out.
	TagSinceChanged int `json:"tag_since_changed"`
	// Recoveries: the state could not be trusted and was moved aside when
	// the store opened, so there was no earlier state to compare with.
	Recoveries []portrait.Recovery `json:"recoveries,omitempty"`
}

// profilesDigest hashes every profile as clients see it, so two states can
// be compared exactly; a tag's since is left out of the hash and collected
// in since (profile id and tag name → since).
func profilesDigest(ctx context.Context, db interface {
	AllProfiles(ctx context.Context, fn func(*portrait.Profile) error) error
}, since map[[2]string]time.Time) (string, int, error) {
	h := sha256.New()
	n := 0
	err := db.AllProfiles(ctx, func(p *portrait.Profile) error {
		p.UpdatedAt = time.Time{}
		for i, t := range p.Tags {
			since[[2]string{p.ID, t.Name}] = t.Since
			p.Tags[i].Since = time.Time{}
		}
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		h.Write(b)
		h.Write([]byte{'\n'})
		n++
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// runRebuild throws the derived state away and replays the event log, then
// checks the profiles came out identical: the log is the source of truth.
func runRebuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	cfg.flags(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	a, err := OpenApp(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	recovered := a.DB.Recoveries()
	if !cfg.JSON {
		for _, r := range recovered {
			fmt.Fprintf(stdout, "%s\n  %s: %s\n", r.Problem, r.Action, r.MovedTo)
		}
	}
	// Some traits depend on the time they are evaluated at (days since the
	// last purchase, a lifecycle stage reached by waiting). Both sides of
	// the comparison are evaluated as of one instant: the current state is
	// refreshed to it first, and the replay uses it too.
	asOf := time.Now().UTC()
	a.Proc.Now = func() time.Time { return asOf }
	if _, err := a.Proc.Refresh(ctx); err != nil {
		return err
	}
	sinceBefore := map[[2]string]time.Time{}
	before, _, err := profilesDigest(ctx, a.DB, sinceBefore)
	if err != nil {
		return err
	}
	// The accounts as a start would restore them: checkpoint, then the log
	// after it.
	accBefore := account.NewService(a.DB, a.DB, a.Proc.Now)
	accBefore.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := accBefore.Load(ctx); err != nil {
		return err
	}
	accDigestBefore, err := accBefore.Model.Digest()
	if err != nil {
		return err
	}
	last, err := a.DB.LastSeq(ctx)
	if err != nil {
		return err
	}
	total, err := a.DB.CountEvents(ctx)
	if err != nil {
		return err
	}
	if err := a.DB.ResetState(ctx); err != nil {
		return err
	}
	proc := a.FreshProcessor()
	proc.Now = a.Proc.Now
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- proc.CatchUp(ctx, last) }()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			break wait
		case <-tick.C:
			if !cfg.JSON {
				fmt.Fprintf(stderr, "\rrebuild: %d / %d", proc.Checkpoint(), last)
			}
		}
	}
	// ResetState emptied the accounts' checkpoint: this load replays the
	// whole log and the edits, and saves a new checkpoint.
	accAfter := account.NewService(a.DB, a.DB, a.Proc.Now)
	accAfter.Logger = accBefore.Logger
	if err := accAfter.Load(ctx); err != nil {
		return err
	}
	accDigestAfter, err := accAfter.Model.Digest()
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	sinceAfter := map[[2]string]time.Time{}
	after, n, err := profilesDigest(ctx, a.DB, sinceAfter)
	if err != nil {
		return err
	}
	res := rebuildResult{Events: total, Profiles: n, Seconds: secs, Before: before, After: after, Identical: before == after && len(recovered) == 0, Recoveries: recovered,
		Accounts: accAfter.Model.Len(), AccountsBefore: accDigestBefore, AccountsAfter: accDigestAfter, AccountsIdentical: accDigestBefore == accDigestAfter}
	res.Identical = res.Identical && res.AccountsIdentical
	for k, t := range sinceAfter {
		if b, ok := sinceBefore[k]; ok && !b.Equal(t) {
			res.TagSinceChanged++
		}
	}
	if secs > 0 {
		res.EventsPerS = float64(total) / secs
	}
	if cfg.JSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	if len(recovered) > 0 {
		fmt.Fprintf(stdout, "\rrebuilt %d profiles from %d events in %.2fs (%.0f events/s); no earlier state to compare with: it was moved aside", n, total, secs, res.EventsPerS)
	} else {
		fmt.Fprintf(stdout, "\rrebuilt %d profiles and %d accounts from %d events in %.2fs (%.0f events/s); identical to before: %v", n, res.Accounts, total, secs, res.EventsPerS, res.Identical)
	}
	if res.TagSinceChanged > 0 {
		fmt.Fprintf(stdout, " (%d tags have another since: a tag keeps the time it was first seen to hold, and the replay saw the history in other batches)", res.TagSinceChanged)
	}
	fmt.Fprintln(stdout)
	return nil
}
