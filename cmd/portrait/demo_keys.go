package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/term"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/demo"
)

// demoKeysFile keeps the demo's credentials in its data directory. Only
// hashes of secrets are in the store, so a restarted demo could neither
// show the admin token nor send with the keys it created; it would create
// new ones on every start. The demo's data directory is a sandbox, and the
// file is readable by its owner only.
const demoKeysFile = "demo-keys.json"

// demoKeys are the admin token (when known) and a write key per source.
type demoKeys struct {
	Admin   string            `json:"admin,omitempty"`
	Sources map[string]string `json:"sources"`
}

// ensureDemoKeys returns the demo's keys, creating each source's write key
// once: later starts read them back and create nothing (creating a key
// with a known secret is a no-op). admin is the token this start knows
// (from the environment or just created), "" if none; one from the
// environment is not written to the file (it is known at every start).
func ensureDemoKeys(ctx context.Context, a *App, admin string, adminFromEnv bool) (*demoKeys, error) {
	path := filepath.Join(a.Config.DataDir, demoKeysFile)
	k := &demoKeys{}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, k); err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "%s is damaged (%v); delete it to create new demo keys", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, portrait.Wrap(err, "cannot read the demo keys")
	}
	if k.Sources == nil {
		k.Sources = map[string]string{}
	}
	switch {
	case admin != "":
		k.Admin = admin
	case k.Admin != "":
		if _, err := a.DB.Authenticate(ctx, portrait.KeyAdmin, k.Admin); err != nil {
			k.Admin = "" // revoked or replaced since
		}
	}
	for _, src := range demo.Sources {
		if k.Sources[src] == "" {
			k.Sources[src] = newSecret("pwk_")
		}
		if err := a.DB.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyWrite, Name: src}, k.Sources[src]); err != nil {
			return nil, err
		}
	}
	stored := *k
	if adminFromEnv {
		stored.Admin = ""
	}
	out, _ := json.MarshalIndent(stored, "", "  ")
	if err := os.WriteFile(path, append(out, '\n'), 0o600); err != nil {
		return nil, portrait.Wrap(err, "cannot keep the demo keys")
	}
	return k, nil
}

// printDemoReady tells how to use the running demo: a command that works
// when pasted, with the real admin token when it is known, and otherwise
// the variable in double quotes so that the shell fills it in.
func printDemoReady(w io.Writer, url, admin, sampleEmail, keysPath string) {
	auth := "Authorization: Bearer " + admin
	if admin == "" {
		auth = "Authorization: Bearer $PORTRAIT_ADMIN_TOKEN"
		fmt.Fprintf(w, "the admin token of this data directory is not known to this start: set PORTRAIT_ADMIN_TOKEN to it\n")
	}
	fmt.Fprintf(w, "serving on %s; try:\n  curl -H \"%s\" \"%s/v1/profiles/lookup?type=email&value=%s\"\n", url, auth, url, sampleEmail)
	fmt.Fprintf(w, "each source sends with its own write key (%s): %s\n", keysPath, joinSources())
}

func joinSources() string {
	s := ""
	for i, src := range demo.Sources {
		if i > 0 {
			s += ", "
		}
		s += src
	}
	return s
}

// lineProgress reports progress on a terminal as one line redrawn with \r,
// and elsewhere (a log, a pipe) as whole lines, at most every step-th call,
// so that lines never run together.
type lineProgress struct {
	w    io.Writer
	tty  bool
	open bool // a \r line is on the terminal
}

func newLineProgress(w io.Writer) *lineProgress {
	p := &lineProgress{w: w}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

// update shows msg; final marks the last update of a run.
func (p *lineProgress) update(msg string, final bool) {
	if p.w == nil {
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", msg)
		p.open = !final
		if final {
			fmt.Fprintln(p.w)
		}
		return
	}
	fmt.Fprintln(p.w, msg)
}
