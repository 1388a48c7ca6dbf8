package datakey

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Levels says which names are secret (机密): access.Classifier answers it
// from explicit settings, the trait schema and the defaults.
type Levels interface {
	SecretTrait(name string) bool
	SecretIdentifier(typ string) bool
}

// EscapePrefix marks a stored string that was sent looking like a sealed
// (or escaped) value: it is kept as EscapePrefix+value and read back as
// value, so that a client cannot make a stored value that the reader would
// try to open, with or without a ring.
const EscapePrefix = "$plain:"

// Sealer is the policy: which values are sealed where. The zero Sealer (no
// Ring) seals nothing; it still escapes look-alikes, and opening a sealed
// value without the ring is an error naming the key.
type Sealer struct {
	Ring   *Ring
	Levels Levels
	// CacheFor keeps the answers of Levels this long (0: asks every time).
	// Deciding a name's level costs more than sealing an event that has
	// nothing secret, and the ingest path asks for every field name of
	// every event; a level changed through the API then applies to values
	// written from at most this long after.
	CacheFor time.Duration
	// Now is the cache's clock (default time.Now).
	Now portrait.Clock

	cache levelCache
}

// levelCache remembers which names are secret, dropped whole when it
// expires or grows past levelCacheMax names (property names are the
// clients' choice).
type levelCache struct {
	mu     sync.RWMutex
	until  time.Time
	traits map[string]bool
	ids    map[string]bool
}

const levelCacheMax = 10000

func (s *Sealer) secretTrait(name string) bool { return s.cached([]byte(name), false) }

func (s *Sealer) secretID(typ string) bool { return s.cached([]byte(typ), true) }

// expire drops the cache once it is CacheFor old; it is called once per
// event or profile sealed, not per name: reading the clock costs more than
// the lookup.
func (s *Sealer) expire() {
	if s.CacheFor <= 0 {
		return
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := now()
	c := &s.cache
	c.mu.RLock()
	fresh := t.Before(c.until)
	c.mu.RUnlock()
	if fresh {
		return
	}
	c.mu.Lock()
	if !t.Before(c.until) {
		c.traits, c.ids, c.until = map[string]bool{}, map[string]bool{}, t.Add(s.CacheFor)
	}
	c.mu.Unlock()
}

func (s *Sealer) cached(name []byte, id bool) bool {
	ask := func() bool {
		if id {
			return s.Levels.SecretIdentifier(string(name))
		}
		return s.Levels.SecretTrait(string(name))
	}
	if s.CacheFor <= 0 {
		return ask()
	}
	c := &s.cache
	c.mu.RLock()
	m := c.traits
	if id {
		m = c.ids
	}
	v, ok := m[string(name)] // no allocation for a map index
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = ask()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.traits == nil || len(c.traits)+len(c.ids) >= levelCacheMax {
		c.traits, c.ids = map[string]bool{}, map[string]bool{}
	}
	if id {
		c.ids[string(name)] = v
	} else {
		c.traits[string(name)] = v
	}
	return v
}

// HasRing reports whether a ring is configured (values may be sealed).
func (s *Sealer) HasRing() bool { return s != nil && s.Ring != nil }

// Active reports whether values are sealed when written.
func (s *Sealer) Active() bool { return s != nil && s.Ring != nil && s.Levels != nil }

func needsEscape(v string) bool {
	return strings.HasPrefix(v, Prefix) || strings.HasPrefix(v, EscapePrefix)
}

func (s *Sealer) ring() *Ring {
	if s == nil {
		return nil
	}
	return s.Ring
}

// openString reads back one stored string: opened, unescaped, or as is.
func (s *Sealer) openString(v string, aad []byte) (string, bool, error) {
	switch {
	case strings.HasPrefix(v, EscapePrefix):
		return v[len(EscapePrefix):], true, nil
	case strings.HasPrefix(v, Prefix):
		b, err := s.ring().Open(v, aad)
		return string(b), true, err
	}
	return v, false, nil
}

// Identifiers.
//
// An identifier of a secret type is stored sealed deterministically
// (SealFixed, with its type as associated data): equal identifiers give
// equal strings, so the identities table keeps its primary key and is
// searched by the sealed form. The value is recoverable, which the
// identity cache (LoadIdentities) and erasure's suppression need.

// StoreIdentifier is the form in which id's value is stored.
func (s *Sealer) StoreIdentifier(id portrait.Identifier) string {
	if s.Active() && id.Value != "" && s.secretID(id.Type) {
		return s.Ring.SealFixed([]byte(id.Value), []byte(id.Type))
	}
	if needsEscape(id.Value) {
		return EscapePrefix + id.Value
	}
	return id.Value
}

// IdentifierForms are every form in which id's value may be stored: in
// clear (written before a key was configured, or while the type was not
// secret) and sealed under each key of the ring (before a rotation
// finished). A lookup searches them all; a write removes the others.
func (s *Sealer) IdentifierForms(id portrait.Identifier) []string {
	plain := id.Value
	if needsEscape(plain) {
		plain = EscapePrefix + plain
	}
	if s.ring() == nil {
		return []string{plain}
	}
	return append([]string{plain}, s.Ring.SealFixedAll([]byte(id.Value), []byte(id.Type))...)
}

// OpenIdentifier reads a stored identifier value back.
func (s *Sealer) OpenIdentifier(typ, stored string) (string, error) {
	v, _, err := s.openString(stored, []byte(typ))
	return v, err
}

// StoreValue is the form of a free value of a named trait (a refused trait
// value kept for the quality report): sealed with a random nonce when the
// name is secret.
func (s *Sealer) StoreValue(name, v string) string {
	if s.Active() && v != "" && s.secretTrait(name) {
		return s.Ring.Seal([]byte(v), nil)
	}
	if needsEscape(v) {
		return EscapePrefix + v
	}
	return v
}

// OpenValue reads back what StoreValue stored.
func (s *Sealer) OpenValue(stored string) (string, error) {
	v, _, err := s.openString(stored, nil)
	return v, err
}

// Profiles.

// SealProfile returns p as it is stored: secret-level trait values and
// identifiers sealed (random nonces; the document is not searched by them),
// look-alike strings escaped, and with a ring every enricher's private state
// sealed whole (SealState). p itself is left alone: the processor keeps
// it in its cache. A profile with nothing to seal is returned as is.
func (s *Sealer) SealProfile(p *portrait.Profile) (*portrait.Profile, error) {
	active := s.Active()
	if active {
		s.expire()
	}
	var traits map[string]portrait.Trait
	for name, t := range p.Traits {
		var stored any
		switch {
		case active && t.Value != nil && s.secretTrait(name):
			b, err := json.Marshal(t.Value)
			if err != nil {
				return nil, portrait.Wrap(err, "cannot seal trait "+name)
			}
			stored = s.Ring.Seal(b, nil)
		default:
			str, ok := t.Value.(string)
			if !ok || !needsEscape(str) {
				continue
			}
			stored = EscapePrefix + str
		}
		if traits == nil {
			traits = make(map[string]portrait.Trait, len(p.Traits))
			for k, v := range p.Traits {
				traits[k] = v
			}
		}
		t.Value = stored
		traits[name] = t
	}
	var ids []portrait.Identifier
	for i, id := range p.Identifiers {
		var stored string
		switch {
		case active && id.Value != "" && s.secretID(id.Type):
			stored = s.Ring.Seal([]byte(id.Value), []byte(id.Type))
		case needsEscape(id.Value):
			stored = EscapePrefix + id.Value
		default:
			continue
		}
		if ids == nil {
			ids = append([]portrait.Identifier(nil), p.Identifiers...)
		}
		ids[i].Value = stored
	}
	var state map[string]json.RawMessage
	for name, raw := range p.State {
		stored := s.SealState(name, raw)
		if len(raw) == 0 || &stored[0] == &raw[0] { // unchanged: SealState returned raw itself
			continue
		}
		if state == nil {
			state = make(map[string]json.RawMessage, len(p.State))
			for k, v := range p.State {
				state[k] = v
			}
		}
		state[name] = stored
	}
	if traits == nil && ids == nil && state == nil {
		return p, nil
	}
	cp := *p
	if traits != nil {
		cp.Traits = traits
	}
	if ids != nil {
		cp.Identifiers = ids
	}
	if state != nil {
		cp.State = state
	}
	return &cp, nil
}

// OpenProfile opens the sealed values of a profile just decoded, in place.
func (s *Sealer) OpenProfile(p *portrait.Profile) error {
	for name, t := range p.Traits {
		str, ok := t.Value.(string)
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(str, EscapePrefix):
			t.Value = str[len(EscapePrefix):]
		case strings.HasPrefix(str, Prefix):
			b, err := s.ring().Open(str, nil)
			if err != nil {
				return err
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				return portrait.Wrap(err, "sealed trait "+name+" is not JSON")
			}
			t.Value = v
		default:
			continue
		}
		p.Traits[name] = t
	}
	for i, id := range p.Identifiers {
		v, changed, err := s.openString(id.Value, []byte(id.Type))
		if err != nil {
			return err
		}
		if changed {
			p.Identifiers[i].Value = v
		}
	}
	for name, stored := range p.State {
		raw, err := s.OpenState(name, stored)
		if err != nil {
			return err
		}
		p.State[name] = raw
	}
	return nil
}

// Event bodies.
//
// An event is stored as its JSON; within its traits, properties and context
// (at any depth: context.traits, a product's fields), a member whose name
// is a secret trait has its value sealed, whole (a string, a number, an
// object), as the JSON it was; and in an object shaped like an external id
// ({"type": T, "id": V} or {"type": T, "value": V}) of a secret identifier
// type, V is sealed. Everything else is left byte for byte as it was.

var (
	quotedPrefix = []byte(`"` + Prefix)
	quotedEscape = []byte(`"` + EscapePrefix)
)

// SealEvent returns the stored form of an event body.
func (s *Sealer) SealEvent(body []byte) ([]byte, error) {
	if !s.Active() && !bytes.Contains(body, quotedPrefix) && !bytes.Contains(body, quotedEscape) {
		return body, nil
	}
	if s.Active() {
		s.expire()
	}
	w := &walker{b: body, s: s, seal: true, stack: make([]member, 0, 32)}
	return w.run()
}

// OpenEvent returns the event body as it was before SealEvent.
func (s *Sealer) OpenEvent(body []byte) ([]byte, error) {
	if !bytes.Contains(body, quotedPrefix) && !bytes.Contains(body, quotedEscape) {
		return body, nil
	}
	w := &walker{b: body, s: s}
	return w.run()
}

// Sticky is a Levels that also calls secret the names and identifier types
// found sealed in stored data: a rotation re-seals what was sealed even
// when the levels at hand (an offline command's, without the trait schema)
// would not seal it now. It never unseals.
type Sticky struct {
	Levels      Levels
	traits, ids map[string]bool
}

func (k *Sticky) add(m *map[string]bool, name string) {
	if *m == nil {
		*m = map[string]bool{}
	}
	(*m)[name] = true
}

// SecretTrait implements Levels.
func (k *Sticky) SecretTrait(name string) bool {
	return k.traits[name] || (k.Levels != nil && k.Levels.SecretTrait(name))
}

// SecretIdentifier implements Levels.
func (k *Sticky) SecretIdentifier(typ string) bool {
	return k.ids[typ] || (k.Levels != nil && k.Levels.SecretIdentifier(typ))
}

// NoteEvent adds the names sealed in a stored event body.
func (k *Sticky) NoteEvent(body []byte) error {
	if !HasSealed(body) {
		return nil
	}
	w := &walker{b: body, sealed: k}
	_, err := w.run()
	return err
}

// NoteProfile adds the trait names and identifier types sealed in a stored
// profile (before OpenProfile).
func (k *Sticky) NoteProfile(p *portrait.Profile) {
	for name, t := range p.Traits {
		if s, ok := t.Value.(string); ok && IsSealed(s) {
			k.add(&k.traits, name)
		}
	}
	for _, id := range p.Identifiers {
		if IsSealed(id.Value) {
			k.add(&k.ids, id.Type)
		}
	}
}

// Reset forgets the noted names (kept: Levels).
func (k *Sticky) Reset() { k.traits, k.ids = nil, nil }

// ClearNames returns the member names (traits) and external ids' types
// (ids) that hold a value in clear in a stored event body, within its
// traits, properties and context: how many values of a name raised to
// secret are still to be sealed.
func ClearNames(body []byte) (traits, ids map[string]bool, err error) {
	k := &Sticky{}
	w := &walker{b: body, clear: k}
	if _, err := w.run(); err != nil {
		return nil, nil, err
	}
	return k.traits, k.ids, nil
}

// HasSealed reports whether a stored event body holds a sealed value.
func HasSealed(body []byte) bool { return bytes.Contains(body, quotedPrefix) }

type edit struct {
	start, end int
	repl       []byte
}

// walker finds the values to seal or open in one JSON document without
// decoding it: a single pass over the bytes, collecting the edits.
type walker struct {
	b     []byte
	s     *Sealer
	seal  bool
	edits []edit
	err   error
	// sealed, when set, collects what holds a sealed value instead of
	// opening it (Sticky).
	sealed *Sticky
	// clear, when set, collects the names (and external ids' types) that
	// hold a value in clear (ClearNames).
	clear *Sticky
	stack []member // the members of the objects being walked
}

const maxDepth = 1000

var errSyntax = portrait.Errorf(portrait.EINTERNAL, "an event body to seal or open is not valid JSON")

func (w *walker) run() ([]byte, error) {
	b := w.b
	i := ws(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errSyntax
	}
	end := w.members(i, 0, func(name []byte, vs, ve int) {
		if n := string(name); (n == "traits" || n == "properties" || n == "context") && b[vs] == '{' {
			w.object(vs, 1)
		}
	})
	if w.err == nil && end < 0 {
		w.err = errSyntax
	}
	if w.err != nil {
		return nil, w.err
	}
	if len(w.edits) == 0 {
		return w.b, nil
	}
	// Edits were made in document order, inner ones never overlapping
	// outer ones (a sealed value is not descended into).
	var out bytes.Buffer
	out.Grow(len(b) + 64*len(w.edits))
	at := 0
	for _, e := range w.edits {
		out.Write(b[at:e.start])
		out.Write(e.repl)
		at = e.end
	}
	out.Write(b[at:])
	return out.Bytes(), nil
}

type member struct {
	name   []byte // unescaped
	vs, ve int
}

// members walks the object at i, calling fn for each member with its
// value's span (nil fn: pushing it on the stack), and returns the end of the object (-1 on a syntax error).
func (w *walker) members(i, depth int, fn func(name []byte, vs, ve int)) int {
	b := w.b
	if depth > maxDepth {
		return -1
	}
	i = ws(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		ke := skipString(b, i)
		if ke < 0 {
			return -1
		}
		name := keyName(b[i:ke])
		i = ws(b, ke)
		if i >= len(b) || b[i] != ':' {
			return -1
		}
		vs := ws(b, i+1)
		ve := skipValue(b, vs, depth+1)
		if ve < 0 {
			return -1
		}
		if fn != nil {
			fn(name, vs, ve)
		} else {
			w.stack = append(w.stack, member{name, vs, ve})
		}
		i = ws(b, ve)
		if i >= len(b) {
			return -1
		}
		if b[i] == '}' {
			return i + 1
		}
		if b[i] != ',' {
			return -1
		}
		i = ws(b, i+1)
	}
}

// object handles an object inside the sealed scope. Its members are
// gathered on the walker's stack (one allocation per walk, not per object):
// an external id's type decides how its other members are handled.
func (w *walker) object(i, depth int) {
	start := len(w.stack)
	if w.members(i, depth, nil) < 0 {
		w.err = errSyntax
		return
	}
	end := len(w.stack)
	defer func() { w.stack = w.stack[:start] }()
	// An external id: {"type": "id_card", "id": "…"}; or a split's
	// {"via_type": "id_card", "via_value": "…"} (profile.SplitEvent).
	typ, secretID, via := "", false, false
	for k := start; k < end; k++ {
		m := w.stack[k]
		if n := string(m.name); (n == "type" || n == "via_type") && w.b[m.vs] == '"' && (w.sealed != nil || w.clear != nil || (w.seal && w.s.Active())) {
			json.Unmarshal(w.b[m.vs:m.ve], &typ)
			via = n == "via_type"
			secretID = w.seal && w.s.Active() && w.s.secretID(typ)
		}
	}
	idField := func(name []byte) bool {
		if via {
			return string(name) == "via_value"
		}
		return isIDField(name)
	}
	for k := start; k < end; k++ {
		m := w.stack[k] // a copy: value may grow the stack
		secret := false
		if w.seal && w.s.Active() {
			secret = w.s.cached(m.name, false) || (secretID && idField(m.name))
		}
		if w.clear != nil && !bytes.HasPrefix(w.b[m.vs:m.ve], quotedPrefix) && w.b[m.vs] != 'n' {
			if typ != "" && idField(m.name) {
				w.clear.add(&w.clear.ids, typ)
			} else {
				w.clear.add(&w.clear.traits, string(m.name))
			}
		}
		if w.sealed != nil && bytes.HasPrefix(w.b[m.vs:m.ve], quotedPrefix) {
			if typ != "" && idField(m.name) {
				w.sealed.add(&w.sealed.ids, typ)
			} else {
				w.sealed.add(&w.sealed.traits, string(m.name))
			}
			continue
		}
		w.value(m.vs, m.ve, depth, secret)
	}
}

func (w *walker) value(vs, ve, depth int, secret bool) {
	b := w.b
	switch c := b[vs]; {
	case w.seal && secret && c != 'n': // null stays null
		w.sealSpan(vs, ve)
	case c == '"':
		if w.sealed == nil && w.clear == nil {
			w.str(vs, ve)
		}
	case c == '{':
		w.object(vs, depth+1)
	case c == '[':
		if depth > maxDepth {
			w.err = errSyntax
			return
		}
		i := ws(b, vs+1)
		if b[i] == ']' {
			return
		}
		for {
			e := skipValue(b, i, depth+1)
			if e < 0 {
				w.err = errSyntax
				return
			}
			w.value(i, e, depth+1, false)
			if i = ws(b, e); i >= len(b) || b[i] == ']' {
				return
			}
			i = ws(b, i+1) // the comma
		}
	}
}

func (w *walker) sealSpan(vs, ve int) {
	sealed := w.s.Ring.Seal(w.b[vs:ve], nil)
	w.edits = append(w.edits, edit{vs, ve, []byte(`"` + sealed + `"`)})
}

// str escapes a look-alike (sealing) or opens a sealed or escaped string.
func (w *walker) str(vs, ve int) {
	raw := w.b[vs:ve]
	if !bytes.HasPrefix(raw, quotedPrefix) && !bytes.HasPrefix(raw, quotedEscape) {
		return
	}
	if w.seal {
		// "$sealed:…" sent by a client becomes "$plain:$sealed:…"; the
		// prefix is plain ASCII, so it goes in front of the JSON text.
		w.edits = append(w.edits, edit{vs + 1, vs + 1, []byte(EscapePrefix)})
		return
	}
	if bytes.HasPrefix(raw, quotedEscape) {
		w.edits = append(w.edits, edit{vs + 1, vs + 1 + len(EscapePrefix), nil})
		return
	}
	// A sealed value is written by SealEvent with no escapes in it.
	plain, err := w.s.ring().Open(string(raw[1:len(raw)-1]), nil)
	if err != nil {
		w.err = err
		return
	}
	w.edits = append(w.edits, edit{vs, ve, plain})
}

func keyName(q []byte) []byte {
	if bytes.IndexByte(q, '\\') < 0 {
		return q[1 : len(q)-1]
	}
	var s string
	if json.Unmarshal(q, &s) != nil {
		return q[1 : len(q)-1]
	}
	return []byte(s)
}

func isIDField(name []byte) bool { return string(name) == "id" || string(name) == "value" }

func ws(b []byte, i int) int {
	if i < 0 {
		return len(b) // a syntax error found before: ends the walk
	}
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the end of the string at i (just after its quote).
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the end of the value at i, -1 if it is not one.
func skipValue(b []byte, i, depth int) int {
	if i >= len(b) || depth > maxDepth {
		return -1
	}
	switch c := b[i]; c {
	case '"':
		return skipString(b, i)
	case '{', '[':
		closing := c + 2
		i = ws(b, i+1)
		if i < len(b) && b[i] == closing {
			return i + 1
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return -1
				}
				if i = ws(b, skipString(b, i)); i >= len(b) || b[i] != ':' {
					return -1
				}
				i = ws(b, i+1)
			}
			if i = skipValue(b, i, depth+1); i < 0 {
				return -1
			}
			if i = ws(b, i); i >= len(b) {
				return -1
			}
			if b[i] == closing {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = ws(b, i+1)
		}
	default:
		j := i
		for j < len(b) && !strings.ContainsRune(",}] \n\t\r", rune(b[j])) {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}
