// Package egress guards the requests Portrait makes to addresses its users
// name (segment webhooks, deliveries): a URL that leads to the host itself,
// the private network or a cloud metadata service is refused unless an
// allow-list names it, both when the URL is saved and when each connection
// is made, since a name may resolve elsewhere by then (DNS rebinding).
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Guard decides which addresses outbound requests may reach. The zero
// value refuses every special-purpose address.
type Guard struct {
	// Allow lists networks that may be reached although special (an
	// internal receiver at 10.1.2.3/32, a test server on 127.0.0.1/32).
	Allow []netip.Prefix
	// Resolver looks names up (nil: net.DefaultResolver).
	Resolver *net.Resolver
}

// ParseAllow reads a comma-separated allow-list of addresses and networks.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, portrait.Errorf(portrait.EINVALID, "egress allow-list: %q is neither an address nor a network", f)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "egress allow-list: %q is neither an address nor a network", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// metadata are cloud instance-metadata addresses outside the ranges below
// (Alibaba Cloud's sits in the shared address space, AWS's IPv6 one in ULA).
var metadata = []netip.Prefix{
	netip.MustParsePrefix("100.100.100.200/32"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
}

var special = []struct {
	p      netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "a protocol-assignment address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("64:ff9b::/96"), "a NAT64 address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a NAT64 address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address"},
	{netip.MustParsePrefix("192.88.99.0/24"), "a 6to4 relay address"},
	// Teredo tunnels to an IPv4 address written into the IPv6 one
	// (obfuscated); no receiver of a webhook needs it.
	{netip.MustParsePrefix("2001::/32"), "a Teredo tunnel address"},
}

// sixToFour holds IPv6 addresses that carry an IPv4 address a host may
// route to (6to4 at bits 16–47, IPv4-compatible in the low 32 bits): the
// IPv4 address inside is judged as itself.
var (
	sixToFour  = netip.MustParsePrefix("2002::/16")
	compatible = netip.MustParsePrefix("::/96")
)

// Refusal says why ip may not be reached ("" when it may).
func (g *Guard) Refusal(ip netip.Addr) string {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	for _, p := range g.Allow {
		if p.Contains(ip) {
			return ""
		}
	}
	for _, p := range metadata {
		if p.Contains(ip) {
			return "a cloud metadata address"
		}
	}
	switch {
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "a link-local address (cloud metadata lives there)"
	case ip.IsPrivate():
		return "a private-network address"
	case ip.IsUnspecified():
		return "an unspecified address"
	case ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		return "a multicast address"
	}
	for _, s := range special {
		if s.p.Contains(ip) {
			return s.reason
		}
	}
	if ip.Is6() && (sixToFour.Contains(ip) || compatible.Contains(ip)) {
		b := ip.As16()
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		kind := "an IPv4-compatible address"
		if sixToFour.Contains(ip) {
			v4, kind = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), "a 6to4 address"
		}
		if why := g.Refusal(v4); why != "" {
			return kind + " holding " + v4.String() + ", " + why
		}
	}
	return ""
}

// CheckURL refuses a URL that is not absolute http(s), or whose host is or
// resolves to a refused address; the error (EINVALID) says why.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return portrait.Errorf(portrait.EINVALID, "the URL must be an absolute http or https URL")
	}
	if u.User != nil {
		return portrait.Errorf(portrait.EINVALID, "the URL must not carry a user name or password")
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if why := g.Refusal(ip); why != "" {
			return portrait.Errorf(portrait.EINVALID, "the URL's host %s is %s; allow it explicitly (egress allow-list) if that is intended", host, why)
		}
		return nil
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") || strings.HasSuffix(strings.ToLower(strings.TrimSuffix(host, ".")), ".localhost") {
		return portrait.Errorf(portrait.EINVALID, "the URL's host %s is a loopback name", host)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := g.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return portrait.Errorf(portrait.EINVALID, "the URL's host %s cannot be resolved", host)
	}
	for _, ip := range ips {
		if why := g.Refusal(ip); why != "" {
			return portrait.Errorf(portrait.EINVALID, "the URL's host %s resolves to %s; allow it explicitly (egress allow-list) if that is intended", host, why)
		}
	}
	return nil
}

func (g *Guard) resolver() *net.Resolver {
	if g.Resolver != nil {
		return g.Resolver
	}
	return net.DefaultResolver
}

// ErrRefused is the cause of a connection the guard stopped at dial time.
var ErrRefused = errors.New("egress: address refused")

// Client returns an HTTP client that checks every address it connects to
// (after resolution, so a name that now resolves to a refused address is
// stopped) and follows no redirect: a redirect could lead anywhere.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Resolver: g.Resolver, Control: func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return ErrRefused
		}
		if g.Refusal(ap.Addr()) != "" {
			return ErrRefused
		}
		return nil
	}}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the check
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{Timeout: timeout, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return errRedirect
	}}
}

var errRedirect = errors.New("egress: redirects are not followed")

// Describe turns a delivery error into a message that says what kind of
// failure it was and nothing about what answered or where (no address, no
// body, no TLS detail): it is shown to API clients and kept in dead letters.
func Describe(err error, status int) string {
	switch {
	case err == nil && status != 0:
		return fmt.Sprintf("the endpoint answered HTTP %d", status)
	case err == nil:
		return ""
	case errors.Is(err, ErrRefused):
		return "the endpoint's address is refused by the egress policy"
	case errors.Is(err, errRedirect):
		return "the endpoint answered with a redirect, which is not followed"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "the endpoint did not answer in time"
	case errors.Is(err, context.Canceled):
		return "the delivery was cancelled"
	}
	return "the endpoint could not be reached"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
