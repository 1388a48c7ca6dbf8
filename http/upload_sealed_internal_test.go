package http

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime/multipart"
	"os"
	"testing"

	"github.com/portrait-cdp/portrait/internal/datakey"
)

// TestUploadSealedWhileImported: with a data key, an upload's temporary
// file is a sealed stream (no row in clear on disk), read back as sent,
// and hashed as sent (a file sent again is the same import).
func TestUploadSealedWhileImported(t *testing.T) {
	line, _ := datakey.NewKeyLine("k1")
	ring, err := datakey.Parse([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	file := []byte("crm_id,id_card\nc1,110101199003071233\n")
	for _, sealer := range []UploadSealer{ring, nil} {
		s := NewServer()
		s.ImportDir, s.UploadSealer = t.TempDir(), sealer
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("file", "people.csv")
		fw.Write(file)
		mw.Close()
		part, err := multipart.NewReader(&body, mw.Boundary()).NextPart()
		if err != nil {
			t.Fatal(err)
		}
		tmp, err := s.saveUpload(part, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(tmp)
		if sealed := !bytes.Contains(raw, []byte("110101199003071233")) && datakey.IsSealedStream(raw); sealed != (sealer != nil) {
			t.Errorf("sealer %v: the file on disk is sealed: %v (%q)", sealer != nil, sealed, raw)
		}
		f, err := s.openUpload(tmp)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(got, file) {
			t.Errorf("read back %q %v", got, err)
		}
		sum := sha256.Sum256(file)
		if h, err := s.uploadHash(tmp); err != nil || h != hex.EncodeToString(sum[:]) {
			t.Errorf("hash %s %v", h, err)
		}
	}
}
