package nats

import (
	"context"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/portrait-cdp/portrait"
)

// Publisher publishes plain NATS messages (segment deliveries to a
// subject): core NATS, no stream, flushed before Publish returns so that a
// delivery is recorded as sent only once the server has it.
type Publisher struct {
	nc *natsgo.Conn
}

// Dial connects a Publisher; name is how the connection shows in the
// server's monitoring.
func Dial(url, name string) (*Publisher, error) {
	nc, err := natsgo.Connect(url, natsgo.Name(name), natsgo.Timeout(5*time.Second))
	if err != nil {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "cannot connect to NATS at %s: %v", url, err)
	}
	return &Publisher{nc: nc}, nil
}

// Publish sends data to subject with the given headers.
func (p *Publisher) Publish(ctx context.Context, subject string, data []byte, headers map[string]string) error {
	msg := natsgo.NewMsg(subject)
	msg.Data = data
	for k, v := range headers {
		msg.Header.Set(k, v)
	}
	if err := p.nc.PublishMsg(msg); err != nil {
		return err
	}
	return p.nc.FlushWithContext(ctx)
}

// Close closes the connection.
func (p *Publisher) Close() { p.nc.Close() }
