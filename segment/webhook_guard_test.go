package segment_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

// The SSRF probe: webhook URLs aimed at the host, the private network and
// cloud metadata are refused at creation with the reason; nothing is saved.
func TestWebhookRefusesInternalTargets(t *testing.T) {
	store := newMemStore()
	d := segment.NewDispatcher(store)
	ctx := context.Background()
	for _, u := range []string{
		"http://127.0.0.1:8080/v1/keys",
		"http://localhost/",
		"http://[::1]/",
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"http://100.100.100.200/latest/meta-data/", // Alibaba Cloud metadata
		"http://10.0.0.5/",
		"http://192.168.1.1/admin",
		"http://172.16.0.1/",
		"http://[fd00:ec2::254]/",
		"http://[::ffff:127.0.0.1]/",
		"http://0.0.0.0:6379/",
		"http://2130706433/", // 127.0.0.1 as one number: not a host name Go resolves
		"http://user:pw@example.com/",
		"gopher://127.0.0.1:6379/_FLUSHALL",
	} {
		_, err := d.Create(ctx, &segment.Webhook{URL: u})
		if portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: accepted (%v)", u, err)
			continue
		}
		if msg := portrait.ErrorMessage(err); !strings.Contains(msg, "refused") && !strings.Contains(msg, "http or https") {
			t.Errorf("%s: the refusal gives no reason: %s", u, msg)
		}
	}
	if len(d.List()) != 0 {
		t.Errorf("refused webhooks were saved: %+v", d.List())
	}
	// Named explicitly, an internal receiver is fine.
	d.Guard.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32")}
	if _, err := d.Create(ctx, &segment.Webhook{URL: "http://10.0.0.5/hook"}); err != nil {
		t.Errorf("an allow-listed address was refused: %v", err)
	}
}

// DNS rebinding: a name that resolved to a public address when the webhook
// was saved resolves to loopback at delivery. The dial-time check stops it,
// and the dead letter does not say what was there.
func TestWebhookDialTimeCheckAndNoRedirects(t *testing.T) {
	var hits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Server", "internal-admin/1.0")
		http.Error(w, "secret internal page", http.StatusInternalServerError)
	}))
	defer internal.Close()
	_, port, _ := net.SplitHostPort(internal.Listener.Addr().String())

	store := newMemStore()
	d := segment.NewDispatcher(store)
	d.MaxAttempts, d.Backoff = 1, func(int) time.Duration { return 0 }
	// Saved while allowed (as if the name had resolved elsewhere), then
	// the allow-list no longer covers it: the connection is refused.
	d.Guard.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	wh, err := d.Create(context.Background(), &segment.Webhook{URL: "http://127.0.0.1:" + port + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	d.Guard.Allow = nil
	d.Deliver(context.Background(), []*segment.Event{{ID: 1, Segment: "s", Profile: "p", Kind: segment.Enter, At: now}})
	if hits.Load() != 0 {
		t.Fatal("the dial-time check let a refused address through")
	}
	if len(store.dead) != 1 || strings.Contains(store.dead[0].Error, "127.0.0.1") || !strings.Contains(store.dead[0].Error, "refused") {
		t.Fatalf("dead letter: %+v", store.dead)
	}

	// A public-looking endpoint that redirects inward: not followed.
	d.Guard.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.URL+"/admin", http.StatusFound)
	}))
	defer redirect.Close()
	d.Delete(context.Background(), wh.ID)
	if _, err := d.Create(context.Background(), &segment.Webhook{URL: redirect.URL}); err != nil {
		t.Fatal(err)
	}
	d.Deliver(context.Background(), []*segment.Event{{ID: 2, Segment: "s", Profile: "p", Kind: segment.Enter, At: now}})
	if hits.Load() != 0 {
		t.Error("a redirect was followed")
	}
	last := store.dead[len(store.dead)-1]
	if !strings.Contains(last.Error, "redirect") || strings.Contains(last.Error, "127.0.0.1") {
		t.Errorf("dead letter: %+v", last)
	}
	// An internal error page's content is never echoed.
	d.Delete(context.Background(), store.dead[0].Webhook)
	for _, dl := range store.dead {
		if strings.Contains(dl.Error, "secret") || strings.Contains(dl.Error, "internal-admin") {
			t.Errorf("a dead letter reveals what answered: %s", dl.Error)
		}
	}
}
