package importer_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/importer"
)

// readAll drives a reader to the end and checks the contract: no panic,
// every error is EINVALID with a message, rows are numbered 1, 2, 3...
func readAll(t *testing.T, format string, data []byte) {
	rd, err := importer.NewReader(format, bytes.NewReader(data), "")
	if err != nil {
		if portrait.ErrorCode(err) != portrait.EINVALID || portrait.ErrorMessage(err) == "" {
			t.Fatalf("open: %v", err)
		}
		return
	}
	defer rd.Close()
	for n := 1; ; n++ {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			if portrait.ErrorCode(err) != portrait.EINVALID || portrait.ErrorMessage(err) == "" {
				t.Fatalf("row %d: %v", n, err)
			}
			return
		}
		if row.Num != n {
			t.Fatalf("row numbered %d, want %d", row.Num, n)
		}
		if rd.Fixed() && len(row.Values) != len(rd.Header().Names()) {
			t.Fatalf("row %d has %d values for %d columns", n, len(row.Values), len(rd.Header().Names()))
		}
	}
}

func FuzzCSV(f *testing.F) {
	f.Add(crmCSV())
	f.Add([]byte("a,b\n1,2\n\"x\"\"y\",\n"))
	f.Add([]byte("a,a\n"))
	f.Add([]byte("\ufeffa,b\r\n1,\"2\r\n3\"\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) { readAll(t, importer.FormatCSV, data) })
}

func FuzzJSONL(f *testing.F) {
	f.Add(crmJSONL())
	f.Add([]byte("{\"a\":{\"b\":[1,2]},\"c\":null}\n\n{\"a\":1}"))
	f.Add([]byte("{} {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) { readAll(t, importer.FormatJSONL, data) })
}

func FuzzXLSX(f *testing.F) {
	f.Add(crmXLSX(f))
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, data []byte) { readAll(t, importer.FormatXLSX, data) })
}
