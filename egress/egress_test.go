package egress_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/egress"
)

// Addresses that lead to the host itself or an internal network through an
// IPv6 form that carries an IPv4 address (6to4, IPv4-compatible, Teredo),
// or into reserved space, are refused as the IPv4 address itself is; a
// public address in the same forms is not. Found when probed: the API
// accepted a webhook to http://[2002:7f00:1::]/ (6to4 of 127.0.0.1) and to
// http://255.255.255.255/.
func TestRefusesEmbeddedAndReservedAddresses(t *testing.T) {
	var g egress.Guard
	for _, c := range []struct{ addr, want string }{
		{"2002:7f00:1::", "127.0.0.1, a loopback"},
		{"2002:a9fe:a9fe::1", "169.254.169.254, a link-local"},
		{"2002:c0a8:101::", "192.168.1.1, a private"},
		{"::127.0.0.1", "127.0.0.1, a loopback"},
		{"::10.0.0.1", "10.0.0.1, a private"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"192.88.99.1", "6to4 relay"},
		{"64:ff9b:1::a00:1", "NAT64"},
	} {
		if why := g.Refusal(netip.MustParseAddr(c.addr)); !strings.Contains(why, c.want) {
			t.Errorf("%s: refusal %q, want one naming %q", c.addr, why, c.want)
		}
		if err := g.CheckURL(context.Background(), "http://"+netip.AddrPortFrom(netip.MustParseAddr(c.addr), 80).String()+"/hook"); err == nil {
			t.Errorf("%s: the URL was accepted", c.addr)
		}
	}
	for _, ok := range []string{"2002:5db8:d822::1", "::", "2001:4860:4860::8888", "93.184.216.34"} {
		why := g.Refusal(netip.MustParseAddr(ok))
		if ok == "::" {
			if !strings.Contains(why, "unspecified") {
				t.Errorf(":: refusal %q", why)
			}
			continue
		}
		if why != "" {
			t.Errorf("%s (public) refused: %q", ok, why)
		}
	}
	// The allow-list still lets a named internal receiver through, in any form.
	allow, _ := egress.ParseAllow("127.0.0.1")
	g.Allow = allow
	if why := g.Refusal(netip.MustParseAddr("2002:7f00:1::")); why != "" {
		t.Errorf("allowed 127.0.0.1 refused in its 6to4 form: %q", why)
	}
}
