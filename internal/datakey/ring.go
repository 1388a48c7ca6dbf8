// Package datakey seals secret-level values at rest (issue 15 §3): a ring of
// AES-256-GCM data keys read from a key file or an environment variable,
// sealed values that name the key they were sealed with, and the policy of
// what is sealed where (event bodies, profile documents, identifiers).
//
// A sealed value is a string, so it fits wherever the value was: a JSON
// field of an event body or a profile document, a TEXT column.
//
//	$sealed:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>
//
// The nonce is 12 bytes: random for values (AES-GCM), and for identifiers a
// synthetic one, an HMAC of the identifier under a key derived from the data
// key, so that the same identifier seals to the same string and the
// identities table can still be searched by it (see docs/privacy.md).
package datakey

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"strings"
	"sync"

	"github.com/portrait-cdp/portrait"
)

// Prefix opens every sealed value.
const Prefix = "$sealed:"

// EnvVar names the environment variable that may hold the keys.
const EnvVar = "PORTRAIT_DATA_KEY"

// KeySize is the length of a data key: AES-256.
const KeySize = 32

const nonceSize = 12

// key is one data key with the two keys derived from it: one encrypts, the
// other makes identifiers' synthetic nonces. Deriving them keeps the two
// uses apart although the file holds one secret per key.
type key struct {
	id   string
	aead cipher.AEAD
	siv  []byte
	sup  []byte // the suppression list's HMAC key (suppress.go)
	// supPool holds HMACs under sup, for the ingest path.
	supPool *sync.Pool
}

// Ring is the set of data keys; the last one seals, every one opens. A nil
// Ring seals nothing and refuses to open a sealed value.
type Ring struct {
	keys []*key
	byID map[string]*key
}

func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("portrait data key/" + label))
	return m.Sum(nil)
}

func newKey(id string, secret []byte) (*key, error) {
	if !validID(id) {
		return nil, portrait.Errorf(portrait.EINVALID, "data key id %q: use 1 to 64 letters, digits, '-', '_' or '.'", id)
	}
	if len(secret) != KeySize {
		return nil, portrait.Errorf(portrait.EINVALID, "data key %q is %d bytes; AES-256 needs %d (base64 of 32 random bytes)", id, len(secret), KeySize)
	}
	block, err := aes.NewCipher(derive(secret, "aes-256-gcm"))
	if err != nil {
		return nil, portrait.Wrap(err, "cannot make the data key's cipher")
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot make the data key's cipher")
	}
	sup := suppressionKey(secret)
	return &key{id: id, aead: aead, siv: derive(secret, "synthetic-nonce"), sup: sup, supPool: suppressionPool(sup)}, nil
}

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// Parse reads keys, one a line: "<id> <base64 of 32 bytes>"; '#' starts a
// comment. A line may also be ';'-separated (for an environment variable),
// and a lone base64 key is given the id "env". The last key seals.
func Parse(text []byte) (*Ring, error) {
	r := &Ring{byID: map[string]*key{}}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		for _, part := range strings.Split(line, ";") {
			f := strings.Fields(part)
			if len(f) == 0 {
				continue
			}
			id, enc := "env", f[0]
			switch len(f) {
			case 1:
			case 2:
				id, enc = f[0], f[1]
			default:
				return nil, portrait.Errorf(portrait.EINVALID, "data keys, line %d: want \"<id> <base64 key>\"", n)
			}
			secret, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				if secret, err = base64.RawURLEncoding.DecodeString(enc); err != nil {
					return nil, portrait.Errorf(portrait.EINVALID, "data keys, line %d: the key of %q is not base64", n, id)
				}
			}
			k, err := newKey(id, secret)
			if err != nil {
				return nil, err
			}
			if r.byID[id] != nil {
				return nil, portrait.Errorf(portrait.EINVALID, "data keys, line %d: key id %q appears twice", n, id)
			}
			r.byID[id] = k
			r.keys = append(r.keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read the data keys")
	}
	if len(r.keys) == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "no data key in the given text")
	}
	return r, nil
}

// Load reads the ring from file when one is named, else from the
// environment variable PORTRAIT_DATA_KEY; (nil, nil) when neither is set.
func Load(file string, getenv func(string) string) (*Ring, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "cannot read the data key file: %v", err)
		}
		r, err := Parse(b)
		if err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "data key file %s: %s", file, portrait.ErrorMessage(err))
		}
		return r, nil
	}
	if getenv == nil {
		return nil, nil
	}
	if v := strings.TrimSpace(getenv(EnvVar)); v != "" {
		r, err := Parse([]byte(v))
		if err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "%s: %s", EnvVar, portrait.ErrorMessage(err))
		}
		return r, nil
	}
	return nil, nil
}

// Current is the id of the key that seals (empty for a nil ring).
func (r *Ring) Current() string {
	if r == nil {
		return ""
	}
	return r.keys[len(r.keys)-1].id
}

// IDs lists the key ids, oldest first.
func (r *Ring) IDs() []string {
	if r == nil {
		return nil
	}
	out := make([]string, len(r.keys))
	for i, k := range r.keys {
		out[i] = k.id
	}
	return out
}

func (r *Ring) current() *key { return r.keys[len(r.keys)-1] }

func encode(k *key, nonce, plain, aad []byte) string {
	out := make([]byte, 0, nonceSize+len(plain)+k.aead.Overhead())
	out = append(out, nonce...)
	out = k.aead.Seal(out, nonce, plain, aad)
	return Prefix + k.id + ":" + base64.RawURLEncoding.EncodeToString(out)
}

// Seal encrypts plain under the current key with a random nonce.
func (r *Ring) Seal(plain, aad []byte) string {
	k := r.current()
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		panic("datakey: no randomness: " + err.Error()) // crypto/rand does not fail on supported systems
	}
	return encode(k, nonce, plain, aad)
}

// SealFixed encrypts plain deterministically: the nonce is an HMAC of aad
// and plain, so equal inputs give equal strings (the identities table is
// searched by them) and different ones different nonces.
func (r *Ring) SealFixed(plain, aad []byte) string { return sealFixed(r.current(), plain, aad) }

// SealFixedAll is SealFixed under every key, oldest first: the forms a
// stored identifier may have while a rotation has not finished.
func (r *Ring) SealFixedAll(plain, aad []byte) []string {
	if r == nil {
		return nil
	}
	out := make([]string, len(r.keys))
	for i, k := range r.keys {
		out[i] = sealFixed(k, plain, aad)
	}
	return out
}

func sealFixed(k *key, plain, aad []byte) string {
	m := hmac.New(sha256.New, k.siv)
	var n [8]byte
	for i, l := 0, len(aad); i < 8; i++ {
		n[i] = byte(l >> (8 * i))
	}
	m.Write(n[:]) // the length keeps (aad, plain) pairs apart
	m.Write(aad)
	m.Write(plain)
	return encode(k, m.Sum(nil)[:nonceSize], plain, aad)
}

// IsSealed reports whether s is a sealed value.
func IsSealed(s string) bool { return strings.HasPrefix(s, Prefix) }

// KeyOf returns the id of the key s was sealed with ("" if s is not sealed).
func KeyOf(s string) string {
	if !IsSealed(s) {
		return ""
	}
	id, _, _ := strings.Cut(s[len(Prefix):], ":")
	return id
}

// Open decrypts a sealed value. A value sealed with a key the ring does not
// hold is an error naming the key, never garbage.
func (r *Ring) Open(s string, aad []byte) ([]byte, error) {
	if !IsSealed(s) {
		return nil, portrait.Errorf(portrait.EINTERNAL, "not a sealed value")
	}
	id, data, ok := strings.Cut(s[len(Prefix):], ":")
	if !ok {
		return nil, portrait.Errorf(portrait.EINTERNAL, "a sealed value is damaged (no key id)")
	}
	if r == nil {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "a value is sealed with data key %q, but no data key is configured (--data-key-file or %s)", id, EnvVar)
	}
	k := r.byID[id]
	if k == nil {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "a value is sealed with data key %q, which is not among the configured data keys (%s)", id, strings.Join(r.IDs(), ", "))
	}
	raw, err := base64.RawURLEncoding.DecodeString(data)
	if err != nil || len(raw) < nonceSize+k.aead.Overhead() {
		return nil, portrait.Errorf(portrait.EINTERNAL, "a value sealed with data key %q is damaged", id)
	}
	plain, err := k.aead.Open(nil, raw[:nonceSize], raw[nonceSize:], aad)
	if err != nil {
		return nil, portrait.Errorf(portrait.EINTERNAL, "a value sealed with data key %q does not authenticate: damaged, or a different key under the same id", id)
	}
	return plain, nil
}

// NewKeyLine makes a fresh random key and returns its key-file line.
func NewKeyLine(id string) (string, error) {
	secret := make([]byte, KeySize)
	if _, err := rand.Read(secret); err != nil {
		return "", portrait.Wrap(err, "cannot make a data key")
	}
	if _, err := newKey(id, secret); err != nil {
		return "", err
	}
	return id + " " + base64.StdEncoding.EncodeToString(secret), nil
}

// NewEnvVar names the environment variable rotate-data-key may take the new
// key from, when the old ones are in EnvVar.
const NewEnvVar = "PORTRAIT_NEW_DATA_KEY"

// Join is the ring of old's keys then new's, so new's last key seals and
// every key opens. A key id in both must be the same key (a key file that
// already holds the new key); the same id for two different keys is an
// error, since a sealed value names its key by id only.
func Join(old, new *Ring) (*Ring, error) {
	r := &Ring{byID: map[string]*key{}}
	for _, ring := range []*Ring{old, new} {
		if ring == nil {
			continue
		}
		for _, k := range ring.keys {
			if had := r.byID[k.id]; had != nil {
				if !hmac.Equal(had.siv, k.siv) {
					return nil, portrait.Errorf(portrait.EINVALID, "data key id %q names two different keys: give the new key another id (\"<id> <base64 key>\")", k.id)
				}
				// the same key: it moves to its later place, so it seals if last
				for i, x := range r.keys {
					if x.id == k.id {
						r.keys = append(r.keys[:i], r.keys[i+1:]...)
						break
					}
				}
			}
			r.byID[k.id] = k
			r.keys = append(r.keys, k)
		}
	}
	if len(r.keys) == 0 {
		return nil, nil
	}
	return r, nil
}
