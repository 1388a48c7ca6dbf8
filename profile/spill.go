package profile

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"io"
	"os"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
)

// spill holds a retention pass's carried-forward events on disk, between
// the chunks that make them and the store that appends them
// (Compaction.Carried), so that the pass holds a page of them, not one per
// profile of the expired period. They hold profiles in clear (the store
// seals them as it appends them), so each record is sealed with AES-GCM
// under a key made for the pass and kept in memory only: the file, in the
// system's temporary directory, is unreadable without the process, and is
// removed when the pass ends.
type spill struct {
	f    *os.File
	w    *bufio.Writer
	aead cipher.AEAD
	n    int64 // records written
}

// spillPage is how many carried-forward events Carried hands a store at a
// time.
const spillPage = 500

type spilled struct {
	Event *portrait.Event `json:"e"`
	Owner string          `json:"o,omitempty"`
}

func newSpill() (*spill, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, portrait.Wrap(err, "cannot make the retention pass's spill key")
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot make the retention pass's spill key")
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot make the retention pass's spill key")
	}
	f, err := os.CreateTemp("", "portrait-retention-*.spill")
	if err != nil {
		return nil, portrait.Wrap(err, "cannot make the retention pass's spill file")
	}
	return &spill{f: f, w: bufio.NewWriterSize(f, 1<<16), aead: aead}, nil
}

// write adds a carried-forward event and its owner.
func (s *spill) write(e *portrait.Event, owner string) error {
	b, err := json.Marshal(spilled{Event: e, Owner: owner})
	if err != nil {
		return portrait.Wrap(err, "cannot encode a carried-forward event")
	}
	nonce := make([]byte, s.aead.NonceSize())
	binary.BigEndian.PutUint64(nonce, uint64(s.n)) // a record's number: never reused under the key
	sealed := s.aead.Seal(nil, nonce, b, nil)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(sealed)))
	if _, err := s.w.Write(hdr[:]); err != nil {
		return portrait.Wrap(err, "cannot write the retention pass's spill file")
	}
	if _, err := s.w.Write(sealed); err != nil {
		return portrait.Wrap(err, "cannot write the retention pass's spill file")
	}
	s.n++
	return nil
}

// done ends the writing.
func (s *spill) done() error {
	if err := s.w.Flush(); err != nil {
		return portrait.Wrap(err, "cannot write the retention pass's spill file")
	}
	return nil
}

// read hands fn the records in order, spillPage at a time.
func (s *spill) read(fn func(page []Carried) error) error {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return portrait.Wrap(err, "cannot read the retention pass's spill file")
	}
	r := bufio.NewReaderSize(s.f, 1<<16)
	page := make([]Carried, 0, spillPage)
	nonce := make([]byte, s.aead.NonceSize())
	var buf []byte
	for i := int64(0); i < s.n; i++ {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return portrait.Wrap(err, "cannot read the retention pass's spill file")
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return portrait.Wrap(err, "cannot read the retention pass's spill file")
		}
		binary.BigEndian.PutUint64(nonce, uint64(i))
		b, err := s.aead.Open(nil, nonce, buf, nil)
		if err != nil {
			return portrait.Wrap(err, "the retention pass's spill file was altered")
		}
		var x spilled
		if err := json.Unmarshal(b, &x); err != nil {
			return portrait.Wrap(err, "cannot read the retention pass's spill file")
		}
		page = append(page, Carried{Event: x.Event, Owner: x.Owner})
		if len(page) == spillPage {
			if err := fn(page); err != nil {
				return err
			}
			page = make([]Carried, 0, spillPage)
		}
	}
	if len(page) > 0 {
		return fn(page)
	}
	return nil
}

// remove deletes the file.
func (s *spill) remove() {
	s.f.Close()
	os.Remove(s.f.Name())
}
