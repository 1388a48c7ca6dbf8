package datakey

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"io"
	"strings"

	"github.com/portrait-cdp/portrait"
)

// Streams.
//
// A file too large to seal as one value in memory (an upload being
// imported) is sealed in chunks of 64 KiB, each its own AES-GCM message:
// the nonce is a random 7-byte prefix of the file, the chunk's number (4
// bytes) and a last-chunk flag (1 byte), so chunks cannot be reordered,
// dropped or the file cut short without the reader noticing (the
// construction of the STREAM scheme). The label is every chunk's
// associated data. Layout: the line "portrait-sealed-stream-1 <key id>\n",
// the prefix, then the chunks.

const (
	streamMagic = "portrait-sealed-stream-1 "
	streamChunk = 64 << 10
	prefixSize  = 7
)

type streamWriter struct {
	w      io.Writer
	k      *key
	label  []byte
	prefix [prefixSize]byte
	n      uint32
	buf    []byte
	err    error
}

// NewStreamWriter seals what is written to it onto w under the ring's
// current key; Close writes the last chunk (it does not close w).
func (r *Ring) NewStreamWriter(w io.Writer, label string) (io.WriteCloser, error) {
	sw := &streamWriter{w: w, k: r.current(), label: []byte(label), buf: make([]byte, 0, streamChunk)}
	if _, err := rand.Read(sw.prefix[:]); err != nil {
		return nil, portrait.Wrap(err, "no randomness")
	}
	if _, err := io.WriteString(w, streamMagic+sw.k.id+"\n"); err != nil {
		return nil, err
	}
	if _, err := w.Write(sw.prefix[:]); err != nil {
		return nil, err
	}
	return sw, nil
}

func streamNonce(prefix [prefixSize]byte, n uint32, last bool) []byte {
	nonce := make([]byte, nonceSize)
	copy(nonce, prefix[:])
	binary.BigEndian.PutUint32(nonce[prefixSize:], n)
	if last {
		nonce[nonceSize-1] = 1
	}
	return nonce
}

func (sw *streamWriter) flush(last bool) error {
	out := sw.k.aead.Seal(nil, streamNonce(sw.prefix, sw.n, last), sw.buf, sw.label)
	sw.n++
	if sw.n == 0 {
		return portrait.Errorf(portrait.ETOOLARGE, "a sealed stream is limited to 2^32 chunks")
	}
	sw.buf = sw.buf[:0]
	_, err := sw.w.Write(out)
	return err
}

func (sw *streamWriter) Write(p []byte) (int, error) {
	if sw.err != nil {
		return 0, sw.err
	}
	n := len(p)
	for len(p) > 0 {
		// A full chunk is written only once more data follows: the last
		// chunk carries the flag, and may be full.
		if len(sw.buf) == streamChunk {
			if sw.err = sw.flush(false); sw.err != nil {
				return 0, sw.err
			}
		}
		k := copy(sw.buf[len(sw.buf):streamChunk], p)
		sw.buf = sw.buf[:len(sw.buf)+k]
		p = p[k:]
	}
	return n, nil
}

func (sw *streamWriter) Close() error {
	if sw.err != nil {
		return sw.err
	}
	sw.err = portrait.Errorf(portrait.EINTERNAL, "sealed stream already closed")
	return sw.flush(true)
}

type streamReader struct {
	r      *bufio.Reader
	k      *key
	label  []byte
	prefix [prefixSize]byte
	n      uint32
	plain  []byte
	done   bool
	chunk  []byte
}

// IsSealedStream reports whether the first bytes of a file start a sealed
// stream.
func IsSealedStream(head []byte) bool { return strings.HasPrefix(string(head), streamMagic) }

// OpenStream reads a stream NewStreamWriter wrote. A stream sealed with a
// key not in the ring, or altered, cut short or extended, is an error
// (at the first read that meets it).
func (r *Ring) OpenStream(src io.Reader, label string) (io.Reader, error) {
	br := bufio.NewReaderSize(src, streamChunk+64)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, streamMagic) {
		return nil, portrait.Errorf(portrait.EINTERNAL, "not a sealed stream")
	}
	id := strings.TrimSuffix(line[len(streamMagic):], "\n")
	if r == nil {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "a file is sealed with data key %q, but no data key is configured (--data-key-file or %s)", id, EnvVar)
	}
	k := r.byID[id]
	if k == nil {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "a file is sealed with data key %q, which is not among the configured data keys (%s)", id, strings.Join(r.IDs(), ", "))
	}
	sr := &streamReader{r: br, k: k, label: []byte(label), chunk: make([]byte, streamChunk+k.aead.Overhead())}
	if _, err := io.ReadFull(br, sr.prefix[:]); err != nil {
		return nil, portrait.Errorf(portrait.EINTERNAL, "a sealed file is damaged (no nonce prefix)")
	}
	return sr, nil
}

func (sr *streamReader) Read(p []byte) (int, error) {
	for len(sr.plain) == 0 {
		if sr.done {
			return 0, io.EOF
		}
		m, err := io.ReadFull(sr.r, sr.chunk)
		if err != nil && err != io.ErrUnexpectedEOF {
			if err == io.EOF {
				return 0, portrait.Errorf(portrait.EINTERNAL, "a sealed file is cut short")
			}
			return 0, err
		}
		// The last chunk is the one nothing follows.
		_, perr := sr.r.Peek(1)
		last := perr == io.EOF
		plain, oerr := sr.k.aead.Open(sr.chunk[:0:0], streamNonce(sr.prefix, sr.n, last), sr.chunk[:m], sr.label)
		if oerr != nil {
			return 0, portrait.Errorf(portrait.EINTERNAL, "a file sealed with data key %q does not authenticate: damaged, cut short, or a different key under the same id", sr.k.id)
		}
		sr.n++
		sr.plain, sr.done = plain, last
	}
	n := copy(p, sr.plain)
	sr.plain = sr.plain[n:]
	return n, nil
}
