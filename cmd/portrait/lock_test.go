package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// Commands that must not run beside a server refuse a held data directory
// with a conflict that says what to do instead, and leave it untouched.
func TestCommandsRefuseAHeldDataDirectory(t *testing.T) {
	dir := t.TempDir()
	held, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	keyFile := filepath.Join(t.TempDir(), "keys")
	line, err := datakey.NewKeyLine("k1")
	if err != nil {
		t.Fatal(err)
	}
	writeKeyFile(keyFile, line+"\n")
	for _, c := range []struct {
		args   []string
		advice string
	}{
		{[]string{"quality", "--data", dir}, "/v1/quality"},
		{[]string{"keys", "rotate-data-key", "--data", dir, "--data-key-file", keyFile}, "rotate"},
	} {
		err := run(context.Background(), c.args, io.Discard, io.Discard)
		if portrait.ErrorCode(err) != portrait.ECONFLICT || !strings.Contains(portrait.ErrorMessage(err), c.advice) || !strings.Contains(portrait.ErrorMessage(err), dir) {
			t.Errorf("%v over a held directory: %v", c.args, err)
		}
	}
}
