package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	porthttp "github.com/portrait-cdp/portrait/http"
)

// wireAccess gives the server its audit log and the classification levels
// changed through the API (the trait schema's come with the traits service).
func wireAccess(ctx context.Context, s *porthttp.Server, db Store) error {
	s.Audit, s.Classifications = db, db
	c := &access.Classifier{}
	set, err := classifications(ctx, db)
	if err != nil {
		return err
	}
	for _, x := range set {
		l, err := access.ParseLevel(x[2])
		if err != nil {
			return err
		}
		c.Set(x[0], x[1], l)
	}
	s.Classifier = c
	return nil
}

// runAudit: "portrait audit verify" recomputes the audit log's hash chain
// and says whether it is intact (exit status 1 when it is not).
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: portrait audit verify [--data DIR]")
		return errUsage
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./portrait-data", "data directory")
	store := fs.String("store", "", "store URL (postgres://…; default: the embedded store under --data)")
	anchor := fs.String("anchor", "", "SEQ:HASH heads an earlier verify printed, comma-separated: the chain must still hold them (finds records cut off its end and a re-hashed chain)")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	var anchors []portrait.AuditHead
	for _, a := range strings.Split(*anchor, ",") {
		if strings.TrimSpace(a) == "" {
			continue
		}
		h, err := portrait.ParseAuditHead(a)
		if err != nil {
			return err
		}
		anchors = append(anchors, h)
	}
	db, err := openStore(ctx, *store, *data)
	if err != nil {
		return err
	}
	defer db.Close()
	head, n, err := portrait.VerifyAuditAnchored(ctx, db, anchors...)
	if err != nil {
		fmt.Fprintf(stdout, "audit log damaged after %d intact records: %v\n", n, err)
		return err
	}
	fmt.Fprintf(stdout, "audit log intact: %d records, hash chain verified", n)
	if len(anchors) > 0 {
		fmt.Fprintf(stdout, ", %d anchors held", len(anchors))
	}
	fmt.Fprintln(stdout)
	if head.Seq > 0 {
		fmt.Fprintf(stdout, "head: %s (keep it elsewhere; pass it as --anchor next time)\n", head)
	}
	return nil
}
