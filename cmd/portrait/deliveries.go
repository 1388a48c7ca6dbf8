package main

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/delivery"
)

// wireDeliveries sets up scheduled segment deliveries: their rows are the
// activation export's (HTTP layer, one filter for every export), files go
// to the drop directory, NATS subjects to --delivery-nats when given.
func (a *App) wireDeliveries() error {
	svc := delivery.NewService(a.DB, a.HTTP.ActivationRows)
	svc.Log = a.Log
	svc.Dir = a.Config.DeliveryDir
	if svc.Dir == "" {
		svc.Dir = filepath.Join(a.Config.DataDir, "deliveries")
	}
	if err := os.MkdirAll(svc.Dir, 0o750); err != nil {
		return portrait.Wrap(err, "cannot create the delivery drop directory")
	}
	if a.Config.DeliveryNATS != "" {
		nc, err := nats.Connect(a.Config.DeliveryNATS, nats.Name("portrait deliveries"), nats.Timeout(5*time.Second))
		if err != nil {
			return portrait.Errorf(portrait.EINVALID, "cannot connect to NATS at %s for deliveries: %v", a.Config.DeliveryNATS, err)
		}
		svc.NATS = nc
	}
	a.HTTP.Deliveries = svc
	return nil
}

// startDeliveries checks for due deliveries every minute; the NATS
// connection closes when the app stops.
func (a *App) startDeliveries(ctx context.Context) {
	svc := a.HTTP.Deliveries
	if svc == nil {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		svc.Run(ctx, time.Minute)
		if svc.NATS != nil {
			svc.NATS.Close()
		}
	}()
}
