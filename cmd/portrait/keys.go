package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
)

// runKeys: "portrait keys create --kind write|admin --name NAME", "keys list"
// and "keys revoke --id N". Keys live in the event log's file, which a
// running server shares (SQLite WAL), so this works while the server runs.
// A revoked key's console sessions end at their next request; its token, as
// a Bearer or write key, works for at most the server's key cache TTL (30s).
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "rotate-data-key" { // sealing
		return runRotateDataKey(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || (args[0] != "create" && args[0] != "list" && args[0] != "revoke") {
		fmt.Fprintln(stderr, "usage: portrait keys create --kind write|admin --name NAME [--role R] [--clearance L] [--scopes S] [--expires D] [--priority N] [--data DIR] [--json]\n       portrait keys list [--data DIR] [--json]\n       portrait keys revoke --id N [--data DIR]\n       portrait keys rotate-data-key (--data-key-file F | --new-key-file F) [--data DIR | --store URL] [--id ID] [--json]   (old keys: --data-key-file or PORTRAIT_DATA_KEY; new: --new-key-file, PORTRAIT_NEW_DATA_KEY, or appended to --data-key-file)")
		return errUsage
	}
	fs := flag.NewFlagSet("keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./portrait-data", "data directory")
	store := fs.String("store", "", "store URL (postgres://…; default: the embedded store under --data)")
	kind := fs.String("kind", "", "write (a source sending events) or admin (the management API)")
	name := fs.String("name", "", "name; for a write key, the source name recorded as provenance")
	prio := fs.Int("priority", 0, "write keys: source priority when two sources set a trait at the same instant")
	secret := fs.String("secret", "", "use this secret instead of generating one")
	asJSON := fs.Bool("json", false, "machine-readable output")
	id := fs.Int64("id", 0, "revoke: the key's id (portrait keys list)")
	role := fs.String("role", "", "admin keys (API tokens): admin, analyst, marketing, sales, service, auditor or custom (default admin)")
	scopes := fs.String("scopes", "", "custom role: comma-separated family:read|write scopes")
	clearance := fs.String("clearance", "", "API tokens: public, internal, confidential or secret (default: the role's)")
	expires := fs.Duration("expires", 0, "the key expires after this long (0: never)")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if args[0] == "revoke" && *id <= 0 {
		return portrait.Errorf(portrait.EINVALID, "--id must name the key to revoke (see portrait keys list)")
	}
	db, err := openStore(ctx, *store, *data)
	if err != nil {
		return err
	}
	defer db.Close()
	if args[0] == "revoke" {
		if err := db.RevokeKey(ctx, *id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked key %d and ended its console sessions\n", *id)
		return nil
	}
	if args[0] == "list" {
		keys, err := db.ListKeys(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			if keys == nil {
				keys = []*portrait.Key{}
			}
			return json.NewEncoder(stdout).Encode(map[string]any{"keys": keys})
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tNAME\tROLE\tCLEARANCE\tPRIORITY\tCREATED\tEXPIRES")
		for _, k := range keys {
			exp := "never"
			if !k.ExpiresAt.IsZero() {
				exp = k.ExpiresAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", k.ID, k.Kind, k.Name, k.Role, k.Clearance, k.Priority, k.CreatedAt.Format(time.RFC3339), exp)
		}
		return tw.Flush()
	}
	if *kind != portrait.KeyWrite && *kind != portrait.KeyAdmin {
		return portrait.Errorf(portrait.EINVALID, "--kind must be write or admin")
	}
	s := *secret
	if s == "" {
		prefix := "pwk_"
		if *kind == portrait.KeyAdmin {
			prefix = "pat_"
		}
		s = newSecret(prefix)
	}
	k := &portrait.Key{Kind: *kind, Name: *name, Priority: *prio}
	if *expires > 0 {
		k.ExpiresAt = time.Now().Add(*expires)
	}
	if *kind == portrait.KeyAdmin {
		r := *role
		if r == "" {
			r = access.RoleAdmin
		}
		var sc []string
		if *scopes != "" {
			sc = strings.Split(*scopes, ",")
		}
		checked, err := access.CheckRole(r, sc)
		if err != nil {
			return err
		}
		level := access.DefaultClearance(r)
		if *clearance != "" {
			if level, err = access.ParseLevel(*clearance); err != nil {
				return err
			}
		}
		k.Role, k.Scopes, k.Clearance = r, checked, level.String()
	} else if *role != "" || *clearance != "" || *scopes != "" {
		return portrait.Errorf(portrait.EINVALID, "a write key only sends events: it takes no role, scopes or clearance")
	}
	if err := db.CreateKey(ctx, k, s); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"id": k.ID, "kind": k.Kind, "name": k.Name, "priority": k.Priority,
			"role": k.Role, "clearance": k.Clearance, "secret": s})
	}
	fmt.Fprintf(stdout, "created %s key %q (id %d): %s\nThe secret is shown only now.\n", k.Kind, k.Name, k.ID, s)
	return nil
}
