package profile

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"io"
	"os"
	"time"

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
	b := encodeSpilled(e, owner)
	nonce := make([]byte, s.aead.NonceSize())
	binary.BigEndian.PutUint64(nonce, uint64(s.n)) // a record's number: never reused under the key
	sealed := s.aead.Seal(b[:0], nonce, b, nil)
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

// encodeSpilled encodes what a carried-forward event holds (its
// properties as they are: JSON would escape the whole document again),
// with room for the seal's tag.
func encodeSpilled(e *portrait.Event, owner string) []byte {
	b := make([]byte, 0, 64+len(e.MessageID)+len(e.Type)+len(e.Source)+len(owner)+len(e.Properties)+16)
	for _, f := range []string{e.MessageID, e.Type, e.Source, owner, string(e.Properties)} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	for _, t := range []time.Time{e.Timestamp, e.ReceivedAt} {
		b = binary.AppendVarint(b, t.Unix())
		b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	}
	return b
}

func decodeSpilled(b []byte) (*portrait.Event, string, error) {
	var f [5][]byte
	for i := range f {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, "", portrait.Errorf(portrait.EINTERNAL, "the retention pass's spill file is damaged")
		}
		f[i], b = b[k:k+int(n)], b[k+int(n):]
	}
	var at [2]time.Time
	for i := range at {
		sec, k := binary.Varint(b)
		if k <= 0 {
			return nil, "", portrait.Errorf(portrait.EINTERNAL, "the retention pass's spill file is damaged")
		}
		ns, k2 := binary.Uvarint(b[k:])
		if k2 <= 0 {
			return nil, "", portrait.Errorf(portrait.EINTERNAL, "the retention pass's spill file is damaged")
		}
		b = b[k+k2:]
		at[i] = time.Unix(sec, int64(ns)).UTC()
	}
	e := &portrait.Event{MessageID: string(f[0]), Type: string(f[1]), Source: string(f[2]), Properties: bytes.Clone(f[4]),
		Timestamp: at[0], ReceivedAt: at[1]}
	return e, string(f[3]), nil
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
		b, err := s.aead.Open(buf[:0], nonce, buf, nil)
		if err != nil {
			return portrait.Wrap(err, "the retention pass's spill file was altered")
		}
		e, owner, err := decodeSpilled(b)
		if err != nil {
			return err
		}
		page = append(page, Carried{Event: e, Owner: owner})
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
