// Package dataset reads the file formats the analytics consume: CDNOW
// transaction logs, basket files, numeric CSV columns, labelled CSV for
// propensity models and generic transaction CSV such as UCI Online Retail.
//
// Readers never panic on malformed input; they return a portrait.EINVALID
// error that names the line (and column where there is one), because the files
// come from users and the message is what they will see.
package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"

	"github.com/portrait-cdp/portrait"
)

// maxLine bounds one input line. Real basket and CSV lines are far shorter;
// the bound keeps a corrupt file from exhausting memory.
const maxLine = 4 << 20

// MaybeGunzip returns a reader that decompresses r when it starts with the
// gzip magic number and passes it through otherwise, so that every reader
// accepts both plain and .gz files without the caller knowing which.
func MaybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(2)
	if err != nil && err != io.EOF {
		return nil, portrait.Wrap(err, "reading input")
	}
	if bytes.Equal(head, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "input looks gzip-compressed but is not readable: %v", err)
		}
		return zr, nil
	}
	return br, nil
}

func lineError(line int, format string, args ...any) *portrait.Error {
	e := portrait.Errorf(portrait.EINVALID, format, args...)
	e.Details = []portrait.ErrorDetail{{Row: line, Reason: e.Message}}
	e.Message = "line " + itoa(line) + ": " + e.Message
	return e
}

func cellError(line int, column, format string, args ...any) *portrait.Error {
	e := portrait.Errorf(portrait.EINVALID, format, args...)
	e.Details = []portrait.ErrorDetail{{Row: line, Column: column, Reason: e.Message}}
	e.Message = "line " + itoa(line) + ", column " + quote(column) + ": " + e.Message
	return e
}
