package nats

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// slowLink is a TCP proxy to the NATS server that, once delay is set,
// holds every byte from the client for that long before passing it on (in
// order), as a loaded machine or a distant server does to requests: the
// server then sees a pull request later than the client sent it.
type slowLink struct {
	ln    net.Listener
	to    string
	delay atomic.Int64 // nanoseconds
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newSlowLink(t *testing.T, natsURL string) *slowLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &slowLink{ln: ln, to: strings.TrimPrefix(natsURL, "nats://")}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", l.to)
			if err != nil {
				c.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, c, s)
			l.mu.Unlock()
			l.wg.Add(2)
			go func() { defer l.wg.Done(); io.Copy(c, s); c.Close() }()
			go func() { defer l.wg.Done(); l.delayed(s, c); s.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		l.mu.Lock()
		for _, c := range l.conns {
			c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return l
}

func (l *slowLink) url() string { return "nats://" + l.ln.Addr().String() }

// delayed copies src to dst, each chunk no sooner than delay after it was
// read.
func (l *slowLink) delayed(dst, src net.Conn) {
	type chunk struct {
		at   time.Time
		data []byte
	}
	q := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			time.Sleep(time.Until(c.at))
			if _, err := dst.Write(c.data); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{at: time.Now().Add(time.Duration(l.delay.Load())), data: append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
}

// An event published while its partition's consumer idles is delivered at
// once, however late the server sees the consumer's requests: with a pull
// request per Fetch, one the client had given up on (its timer started at
// the send, the server's at the receipt) took the event, which then waited
// the ack wait in an inbox nobody read, and events published between two
// requests waited for the next one.
func TestIdleConsumerGetsANewEventAtOnce(t *testing.T) {
	direct := openBus(t, Config{Partitions: 1, Batch: 10})
	link := newSlowLink(t, direct.cfg.URL)
	slow, err := Open(context.Background(), Config{URL: link.url(), Stream: direct.cfg.Stream, Partitions: 1, Batch: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- slow.Consume(ctx, 0, func(_ context.Context, evs []*portrait.Event) error {
			for _, e := range evs {
				got <- e.MessageID
			}
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// Subscribed and idle before the link slows down.
	publish(t, direct, events(1, 1), 1)
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the first event was not delivered")
	}
	link.delay.Store(int64(1500 * time.Millisecond))
	time.Sleep(2 * time.Second)
	// Spread over more than one Fetch cycle (the client gave up a fetch
	// after 2 s; the server held it from 1.5 s to 2.5 s after its send),
	// each after the previous one's acknowledgement has crossed the link.
	for i := range 6 {
		e := events(1, 1)[0]
		e.MessageID = "late-" + string(rune('a'+i))
		start := time.Now()
		publish(t, direct, []*portrait.Event{e}, 1)
		select {
		case id := <-got:
			if id != e.MessageID {
				t.Fatalf("got %s, want %s", id, e.MessageID)
			}
			t.Logf("%s delivered in %s", id, time.Since(start).Round(time.Millisecond))
		case <-time.After(time.Second):
			unacked, _, _ := direct.ConsumerStats(context.Background())
			t.Fatalf("event %d, published while the consumer idled, not delivered within a second (%d delivered and unacknowledged)", i, unacked)
		}
		time.Sleep(2300 * time.Millisecond)
	}
}
