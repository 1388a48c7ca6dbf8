package datakey_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/internal/datakey"
)

// TestStream: sizes around the chunk give the bytes back; a stream cut at
// a chunk boundary, with a byte changed, opened under another label or
// without its key fails.
func TestStream(t *testing.T) {
	r := ring(t, "k1")
	const chunk = 64 << 10
	for _, size := range []int{0, 1, chunk - 1, chunk, chunk + 1, 3*chunk + 17} {
		plain := make([]byte, size)
		rand.Read(plain)
		var sealed bytes.Buffer
		w, err := r.NewStreamWriter(&sealed, "upload")
		if err != nil {
			t.Fatal(err)
		}
		// written in odd pieces
		for p := plain; len(p) > 0; {
			k := min(len(p), 5000)
			w.Write(p[:k])
			p = p[k:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !datakey.IsSealedStream(sealed.Bytes()) {
			t.Fatalf("%d: no header", size)
		}
		read := func(b []byte, label string, rr *datakey.Ring) ([]byte, error) {
			sr, err := rr.OpenStream(bytes.NewReader(b), label)
			if err != nil {
				return nil, err
			}
			return io.ReadAll(sr)
		}
		got, err := read(sealed.Bytes(), "upload", r)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d: read back %d bytes, %v", size, len(got), err)
		}
		if _, err := read(sealed.Bytes(), "other", r); err == nil {
			t.Errorf("%d: opened under another label", size)
		}
		if _, err := read(sealed.Bytes(), "upload", nil); err == nil || !strings.Contains(err.Error(), `"k1"`) {
			t.Errorf("%d: without the key: %v", size, err)
		}
		b := bytes.Clone(sealed.Bytes())
		b[len(b)-1] ^= 1
		if _, err := read(b, "upload", r); err == nil {
			t.Errorf("%d: a changed byte went unnoticed", size)
		}
		if size > chunk {
			head := len("portrait-sealed-stream-1 k1\n") + 7
			if _, err := read(sealed.Bytes()[:head+chunk+16], "upload", r); err == nil {
				t.Errorf("%d: cut after the first chunk went unnoticed", size)
			}
		}
	}
}
