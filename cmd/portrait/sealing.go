package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
	"github.com/portrait-cdp/portrait/postgres"
	"github.com/portrait-cdp/portrait/sqlite"
)

// Encryption at rest of secret-level values (issue 15 §3, docs/privacy.md).

// openSealing gives the store its data keys, right after it opens and
// before anything reads: values sealed before must open from the first
// read. What is sealed from now on is decided by the classification levels
// (wireSealingLevels). Without a key the server starts and says so.
func (a *App) openSealing() error {
	ring, err := datakey.Load(a.Config.DataKeyFile, os.Getenv)
	if err != nil {
		return err
	}
	db, ok := a.DB.(sealedStore)
	if !ok {
		// Failing closed: a deployment that configured a key expects its
		// secret values sealed, and must not find them written in clear
		// in a store that cannot seal.
		if ring != nil {
			return portrait.Errorf(portrait.EINVALID, "a data key is configured, but the %s store does not seal values at rest (docs/privacy.md)", storeKindName(a.DB))
		}
		return nil
	}
	if ring == nil {
		a.Log.Warn("no data key configured: secret-level values (ID numbers, traits classified secret) are stored in clear; set --data-key-file or " + datakey.EnvVar + " to seal them")
	} else {
		a.Log.Info("secret-level values are sealed at rest", "data_key", ring.Current(), "keys", strings.Join(ring.IDs(), ","))
	}
	db.SetSealer(&datakey.Sealer{Ring: ring, CacheFor: 2 * time.Second})
	return nil
}

// wireSealingLevels makes the store seal by the levels the API masks by:
// the server's classifier (explicit settings, the trait schema, defaults).
// Called once the trait schema is wired and before anything is written.
func (a *App) wireSealingLevels() {
	c := a.HTTP.Classifier
	if c == nil {
		c = &access.Classifier{}
		a.HTTP.Classifier = c
	}
	if c.Schema == nil && a.HTTP.Traits != nil && a.HTTP.Traits.Enricher != nil && a.HTTP.Traits.Enricher.Schema != nil {
		sc := a.HTTP.Traits.Enricher.Schema
		c.Schema = func(name string) (string, bool) {
			f, ok := sc.Lookup(name)
			return f.Classification, ok
		}
	}
	if db, ok := a.DB.(sealedStore); ok {
		if s := db.Sealer(); s != nil {
			s.Levels = c
		}
	}
}

// sealedStore is a store that seals secret-level values at rest: both
// stores (sqlite/, postgres/).
type sealedStore interface {
	SetSealer(*datakey.Sealer)
	Sealer() *datakey.Sealer
}

// resealStore is a store `keys rotate-data-key` can re-seal.
type resealStore interface {
	Store
	sealedStore
	Reseal(ctx context.Context) (*storeseal.Resealed, error)
}

var (
	_ resealStore = (*sqlite.DB)(nil)
	_ resealStore = (*postgres.DB)(nil)
)

// rotateResult is what rotate-data-key reports.
type rotateResult struct {
	NewKey   string              `json:"new_key"`
	Keys     []string            `json:"keys"`
	Resealed *storeseal.Resealed `json:"resealed"`
	// Removable are the older keys nothing is sealed with any more.
	Removable []string `json:"removable"`
	KeyFile   string   `json:"key_file"`
}

// runRotateDataKey: "portrait keys rotate-data-key --data DIR
// [--data-key-file F]". It adds a new key to the key file (creating it, for
// a store that had none), re-seals every stored secret-level value with it
// (event log and state, at the levels set now), and reports the counts. It
// runs on a stopped store (the data directory's LOCK) and is audited.
func runRotateDataKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys rotate-data-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./portrait-data", "data directory")
	store := fs.String("store", "", "store URL (postgres://…; default: the embedded store under --data); every server on it must be stopped")
	file := fs.String("data-key-file", "", "the data key file the new key is appended to (created if absent)")
	id := fs.String("id", "", "the new key's id (default: k and the UTC time)")
	asJSON := fs.Bool("json", false, "machine-readable output")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *file == "" {
		// No default: the file belongs off the data directory's disk, and
		// keys from the environment cannot be written back.
		return portrait.Errorf(portrait.EINVALID, "--data-key-file must name the key file to add the new key to (created if absent; keep it apart from the data directory); keys in %s: put them in that file first", datakey.EnvVar)
	}
	kind, _, err := parseStore(*store, *data)
	if err != nil {
		return err
	}
	if kind != storePostgres {
		// PostgreSQL has no such lock: its servers must be stopped by the
		// operator (docs/privacy.md).
		lock, err := lockDir(*data)
		if err != nil {
			if portrait.ErrorCode(err) == portrait.ECONFLICT {
				return portrait.Errorf(portrait.ECONFLICT, "the data directory %s is in use by a running portrait server: stop it, rotate, and start it with the new key file", *data)
			}
			return err
		}
		defer lock.Close()
	}

	old, err := os.ReadFile(*file)
	if err != nil && !os.IsNotExist(err) {
		return portrait.Errorf(portrait.EINVALID, "cannot read the data key file: %v", err)
	}
	if len(bytes.TrimSpace(old)) > 0 {
		if _, err := datakey.Parse(old); err != nil {
			return portrait.Errorf(portrait.EINVALID, "data key file %s: %s", *file, portrait.ErrorMessage(err))
		}
	}
	kid := *id
	if kid == "" {
		kid = "k" + time.Now().UTC().Format("20060102T150405")
	}
	line, err := datakey.NewKeyLine(kid)
	if err != nil {
		return err
	}
	// The new key is on disk before anything is sealed with it: a rotation
	// that stops half-way leaves values under both keys, both in the file.
	text := string(old)
	if text == "" {
		text = "# Portrait data keys (docs/privacy.md): \"<id> <base64 of 32 bytes>\", one a line; the last seals.\n"
	} else if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	text += line + "\n"
	ring, err := datakey.Parse([]byte(text))
	if err != nil {
		return err
	}
	if err := writeKeyFile(*file, text); err != nil {
		return err
	}

	st, err := openStore(ctx, *store, *data)
	if err != nil {
		return err
	}
	defer st.Close()
	db, ok := st.(resealStore)
	if !ok {
		return portrait.Errorf(portrait.EINVALID, "the %s store cannot be re-sealed", storeKindName(st))
	}
	c := &access.Classifier{}
	set, err := db.Classifications(ctx)
	if err != nil {
		return err
	}
	for _, x := range set {
		l, err := access.ParseLevel(x.Level)
		if err != nil {
			return err
		}
		c.Set(x.Kind, x.Name, l)
	}
	db.SetSealer(&datakey.Sealer{Ring: ring, Levels: c})
	n, err := db.Reseal(ctx)
	if err != nil {
		return err
	}
	res := rotateResult{NewKey: kid, Keys: ring.IDs(), Resealed: n, Removable: ring.IDs()[:len(ring.IDs())-1], KeyFile: *file}
	if err := db.Record(ctx, portrait.AuditRecord{Actor: "cli", Action: "data_key.rotate", Target: kid,
		Detail: map[string]any{"keys": res.Keys, "resealed": n}}); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "added data key %s to %s and re-sealed with it: %d events, %d profiles, %d identifiers, %d refused identifiers, %d merge entries, %d refused values, %d splits\n",
		kid, *file, n.Events, n.Profiles, n.Identifiers, n.Refused, n.Merges, n.TraitIssues, n.Splits)
	if len(res.Removable) > 0 {
		fmt.Fprintf(stdout, "nothing is sealed with %s any more: they can be removed from the key file (keep a copy while backups made before now exist)\n", strings.Join(res.Removable, ", "))
	}
	return nil
}

// writeKeyFile replaces the key file whole (owner-only), so a crash leaves
// the old file or the new one, never half of it.
func writeKeyFile(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return portrait.Wrap(err, "cannot create the key file's directory")
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return portrait.Wrap(err, "cannot write the data key file")
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return portrait.Wrap(err, "cannot write the data key file")
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return portrait.Wrap(err, "cannot write the data key file")
	}
	if err := f.Close(); err != nil {
		return portrait.Wrap(err, "cannot write the data key file")
	}
	if err := os.Rename(tmp, path); err != nil {
		return portrait.Wrap(err, "cannot write the data key file")
	}
	return nil
}

// openSealedForReading gives a store opened by an offline command that
// only reads the data keys (--data-key-file, else PORTRAIT_DATA_KEY), so
// that sealed values open. Nothing is sealed through it.
func openSealedForReading(db sealedStore, file string) error {
	ring, err := datakey.Load(file, os.Getenv)
	if err != nil {
		return err
	}
	db.SetSealer(&datakey.Sealer{Ring: ring})
	return nil
}

// storeKindName names a store's kind for messages.
func storeKindName(db Store) string {
	if _, ok := db.(*sqlite.DB); ok {
		return "embedded"
	}
	return "PostgreSQL"
}
