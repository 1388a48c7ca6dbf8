package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/egress"
	"github.com/portrait-cdp/portrait/erasure"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/importer"
)

// Hardening is the configuration of limits and guards.
type Hardening struct {
	// EgressAllow lists addresses and networks webhooks may reach although
	// they are loopback, private or link-local ("10.1.2.3,192.168.0.0/16").
	EgressAllow string
	// MaxUploadMiB bounds an uploaded import file; ImportMaxRows and
	// XLSXUnzipMiB bound what one file may expand to (importer.Limits).
	MaxUploadMiB  int64
	ImportMaxRows int
	XLSXUnzipMiB  int64
	// Per-key request rates (0: unlimited) and the /metrics token.
	RateWrite, RateAdmin float64
	MetricsToken         string
	// Quarantine: bytes per source, bytes per record, retention.
	QuarantinePerSourceMiB int64
	QuarantineRecordKiB    int
	QuarantineRetention    time.Duration
	// EventRetention: events older than this (by event time) expire,
	// carried forward into their profiles (retention.go; 0: kept).
	EventRetention time.Duration
}

func (h *Hardening) flags(fs *flag.FlagSet) {
	fs.StringVar(&h.EgressAllow, "egress-allow", "", "addresses/networks webhooks may reach although internal (comma-separated; default: none)")
	fs.Int64Var(&h.MaxUploadMiB, "max-upload", 256, "largest import file accepted over HTTP, in MiB")
	fs.IntVar(&h.ImportMaxRows, "import-max-rows", importer.DefaultLimits.MaxRows, "most data rows one import file may have")
	fs.Float64Var(&h.RateWrite, "rate-write", porthttp.DefaultLimits.WriteRate, "requests per second one write key may send (0: unlimited); over it: 429 with Retry-After")
	fs.Float64Var(&h.RateAdmin, "rate-admin", porthttp.DefaultLimits.AdminRate, "requests per second one admin token or console session may send (0: unlimited)")
	fs.StringVar(&h.MetricsToken, "metrics-token", os.Getenv("PORTRAIT_METRICS_TOKEN"), "bearer token /metrics requires (default $PORTRAIT_METRICS_TOKEN; empty: /metrics is open)")
	fs.Int64Var(&h.QuarantinePerSourceMiB, "quarantine-per-source", 256, "MiB of rejected bodies one source may keep in the quarantine; beyond it records are dropped and counted")
	fs.IntVar(&h.QuarantineRecordKiB, "quarantine-record", 512, "KiB of one rejected body kept (the rest is cut, and the reason says so)")
	fs.DurationVar(&h.QuarantineRetention, "quarantine-retention", 90*24*time.Hour, "quarantined records older than this are deleted (0: kept)")
	fs.DurationVar(&h.EventRetention, "event-retention", 0, "events whose event time is older than this are deleted every hour, what they made of profiles carried forward in the log (0: kept; e.g. 17520h for two years)")
	fs.Int64Var(&h.XLSXUnzipMiB, "xlsx-unzip-limit", importer.DefaultLimits.XLSXUnzipBytes>>20, "most MiB an XLSX workbook may unzip to")
}

// wireErasure serves erasure and the person export, and puts the
// suppression list in front of every ingest path (tracking API, imports),
// so an erased person's identifiers are dropped before they reach the log.
func (a *App) wireErasure(ctx context.Context) error {
	sup := &erasure.Suppressor{EventLog: a.ingestLog(), Store: a.DB, IdentifiersOf: a.Proc.Identifiers}
	if err := a.keySuppressions(ctx, sup); err != nil {
		return err
	}
	if err := sup.Load(ctx); err != nil {
		return err
	}
	a.suppressor = sup // nodes: an ingest node reloads it from a shared store
	hc := a.Config.Hardening
	// A negative age would read as "kept" (0) to one reader and as
	// "expire everything" to another: refused, so the operator says which.
	if hc.EventRetention < 0 {
		return portrait.Errorf(portrait.EINVALID, "--event-retention %s: give an age (e.g. 17520h), or 0 to keep events", hc.EventRetention)
	}
	if hc.QuarantineRetention < 0 {
		return portrait.Errorf(portrait.EINVALID, "--quarantine-retention %s: give an age (e.g. 2160h), or 0 to keep quarantined records", hc.QuarantineRetention)
	}
	qcap := &erasure.QuarantineCap{EventLog: sup, Store: a.DB, MaxBytesPerSource: hc.QuarantinePerSourceMiB << 20, MaxRecordBytes: hc.QuarantineRecordKiB << 10}
	if err := qcap.Load(ctx); err != nil {
		return err
	}
	a.HTTP.Events = qcap
	a.retention = &erasure.Retention{Store: a.DB, Cap: qcap, QuarantineAge: hc.QuarantineRetention, Every: time.Hour, Now: a.now, Log: a.Log, Audit: a.DB, Runs: a.DB, Fence: a.fenceJobs}
	a.HTTP.Retention = &porthttp.Retention{Runs: a.DB, EventAge: hc.EventRetention, QuarantineAge: hc.QuarantineRetention}
	a.eventRetention = &erasure.EventRetention{Age: hc.EventRetention, Every: time.Hour, Expire: a.expireEvents, Audit: a.DB, Now: a.now, Log: a.Log}
	a.HTTP.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "portrait_quarantine_dropped_total",
		Help: "Rejected records dropped because their source's quarantine was full.",
	}, func() float64 { return float64(qcap.Dropped()) }))
	allow, err := egress.ParseAllow(a.Config.Hardening.EgressAllow)
	if err != nil {
		return err
	}
	if a.HTTP.Segments != nil && a.HTTP.Segments.Webhooks != nil {
		a.HTTP.Segments.Webhooks.Guard.Allow = allow
	}
	if a.HTTP.Importer != nil {
		a.HTTP.Importer.Log = qcap
		a.HTTP.Importer.Limits.MaxRows = a.Config.Hardening.ImportMaxRows
		a.HTTP.Importer.Limits.XLSXUnzipBytes = a.Config.Hardening.XLSXUnzipMiB << 20
	}
	a.HTTP.MaxImportBytes = a.Config.Hardening.MaxUploadMiB << 20
	a.HTTP.Limits.WriteRate, a.HTTP.Limits.AdminRate = a.Config.Hardening.RateWrite, a.Config.Hardening.RateAdmin
	a.HTTP.MetricsToken = a.Config.Hardening.MetricsToken
	a.HTTP.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "portrait_events_suppressed_total",
		Help: "Events dropped at ingest because they carry an erased person's identifier.",
	}, func() float64 { return float64(sup.Dropped()) }))
	// Consent: kept as traits by an enricher, answered from memory for
	// segments (and so their exports and webhooks). The book hears of a
	// change before segments do, so they evaluate the new consent.
	a.Proc.Enrichers = append(a.Proc.Enrichers, erasure.ConsentEnricher{})
	book := &erasure.ConsentBook{}
	if err := book.Load(ctx, a.DB.AllProfiles); err != nil {
		return err
	}
	prev := a.Proc.OnChange
	a.Proc.OnChange = func(changed []*portrait.Profile, deleted []string, applied map[string][]*portrait.Event) {
		book.OnChange(changed, deleted, applied)
		if prev != nil {
			prev(changed, deleted, applied)
		}
	}
	if a.HTTP.Segments != nil {
		a.HTTP.Segments.Consent = book.Allows
		if a.HTTP.Segments.Webhooks != nil {
			a.HTTP.Segments.Webhooks.Consent = book.Allows
		}
	}
	// Erasures, lifted suppressions and consent changes go to the audit log.
	svc := &erasure.Service{Proc: a.Proc, Store: a.DB, Suppressor: sup, Log: sup, Now: a.now, Audit: a.DB}
	if a.HTTP.Deliveries != nil { // the files in this node's drop directory
		svc.Drops = a.HTTP.Deliveries
	}
	a.HTTP.Erasure, a.erasure = svc, svc
	if a.shared { // nodes: an erasure rewrites profiles, on the applier only
		a.eraseHere = a.HTTP.Erasure
		a.HTTP.Erasure = &applierErasure{ErasureService: a.HTTP.Erasure, a: a}
	}
	return nil
}

// suppressionRekeyer is a store whose suppression list can be brought
// under the current data key (both stores).
type suppressionRekeyer interface {
	RekeySuppressions(ctx context.Context) (int, error)
}

// keySuppressions keys the suppression list with the data key: the
// Suppressor hashes under the ring's keys, and rows still unkeyed (written
// before a key was configured) or under an older key are re-keyed in place
// now, before ingest starts, and the upgrade is recorded in the audit log.
// Without a key nothing changes: the list stays unkeyed (docs/erasure.md).
func (a *App) keySuppressions(ctx context.Context, sup *erasure.Suppressor) error {
	db, ok := a.DB.(sealedStore)
	if !ok || db.Sealer() == nil || db.Sealer().Ring == nil {
		return nil
	}
	ring := db.Sealer().Ring
	sup.Keys = ring
	rk, ok := a.DB.(suppressionRekeyer)
	if !ok || a.storeReadOnly() {
		return nil
	}
	n, err := rk.RekeySuppressions(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	a.Log.Info("suppressed identifiers keyed with the data key", "rows", n, "data_key", ring.Current())
	return a.DB.Record(ctx, portrait.AuditRecord{Actor: "system", Action: "suppression.rekey", Target: ring.Current(),
		Detail: map[string]any{"rows": n, "data_key": ring.Current()}})
}

// startErasure runs the retention schedule until the app stops.
func (a *App) startErasure(ctx context.Context) {
	if a.retention == nil {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.retention.Run(ctx)
	}()
}
