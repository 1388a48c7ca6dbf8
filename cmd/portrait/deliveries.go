package main

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/delivery"
	natsbus "github.com/portrait-cdp/portrait/nats"
	"github.com/portrait-cdp/portrait/sqlite"
)

// wireDeliveries sets up scheduled segment deliveries: their rows are the
// activation export's (HTTP layer, one filter for every export), files go
// to the drop directory, NATS subjects to --delivery-nats when given.
func (a *App) wireDeliveries() error {
	svc := delivery.NewService(notifyingDeliveries{a.DB, a}, a.HTTP.ActivationRows)
	svc.Log = a.Log
	svc.Fence = a.fenceJobs // scheduled runs: this node's jobs lease, when the store holds it
	if c, ok := a.DB.(delivery.Claims); ok && a.shared {
		// Slots claimed in the store, each sent at most once among the nodes.
		svc.Claims, svc.Term = c, a.jobsTermNow
	}
	svc.Dir = a.Config.DeliveryDir
	if svc.Dir == "" {
		svc.Dir = filepath.Join(a.Config.DataDir, "deliveries")
	}
	if db, ok := a.DB.(*sqlite.DB); ok && db.Sealer() != nil {
		svc.Sealer = db.Sealer() // files in the drop are sealed with the data key, when there is one
	}
	if err := os.MkdirAll(svc.Dir, 0o700); err != nil {
		return portrait.Wrap(err, "cannot create the delivery drop directory")
	}
	if a.Config.DeliveryNATS != "" {
		pub, err := natsbus.Dial(a.Config.DeliveryNATS, "portrait deliveries")
		if err != nil {
			return portrait.Errorf(portrait.EINVALID, "deliveries: %s", portrait.ErrorMessage(err))
		}
		svc.NATS = pub
	}
	a.HTTP.Deliveries = svc
	return nil
}

// runDeliveries checks for due deliveries every minute (tests: deliveryCheck)
// until ctx ends.
// The NATS connection stays open: ctx is the jobs lease's term, and a node
// that loses the lease may take it again, or run a delivery now through
// the API meanwhile; the app closes it with the stores (closeStores).
func (a *App) runDeliveries(ctx context.Context) {
	every := time.Minute
	if a.deliveryCheck > 0 {
		every = a.deliveryCheck
	}
	a.HTTP.Deliveries.Run(ctx, every)
}
