package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
)

// Found by the issue 15 probe: on first start the generated admin token
// and write key were printed whatever the output was, so a server started
// by a service manager, or with its output redirected, left the admin
// token in its log. The secret is printed only on an interactive terminal;
// elsewhere the output says how to get one, and the keys work.
func TestBootstrapPrintsSecretsOnlyOnATerminal(t *testing.T) {
	ctx := context.Background()
	a, err := OpenApp(ctx, Config{DataDir: t.TempDir(), LogLevel: "error"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cheapKeys(a)
	var out bytes.Buffer
	admin, write, err := a.Bootstrap(ctx, func(string) string { return "" }, &out)
	if err != nil || admin == "" || write == "" {
		t.Fatalf("bootstrap: %q %q %v", admin, write, err)
	}
	if strings.Contains(out.String(), admin) || strings.Contains(out.String(), write) {
		t.Errorf("a secret is printed to an output that is not a terminal:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "PORTRAIT_ADMIN_TOKEN") || !strings.Contains(out.String(), "not a terminal") {
		t.Errorf("the output does not say how to get a key:\n%s", out.String())
	}
	if k, err := a.DB.Authenticate(ctx, portrait.KeyAdmin, admin); err != nil || k.Name != "admin" {
		t.Errorf("the admin key does not work: %+v %v", k, err)
	}
}
