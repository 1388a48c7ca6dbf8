package segment

import (
	"sort"
	"strings"

	"github.com/portrait-cdp/portrait/internal/didyoumean"
)

// compile compiles a definition and checks the names it reads: a trait or
// tag that nothing knows, but that is a typo away from one that exists, is
// refused with "did you mean". A name far from every known one is kept (a
// trait that data will bring later); Warnings says no profile has it yet.
func (s *Service) compile(d *Definition) (Node, error) { return s.compileAs(d, "") }

// compileAs compiles the definition of segment self ("" for a new one):
// set operations resolve their operands, which must not lead back to self.
func (s *Service) compileAs(d *Definition, self string) (Node, error) {
	plan, err := d.Compile()
	if err == errSetOp {
		op, ids, _ := d.setOp()
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.compileSetOp(op, ids, self)
	}
	if err != nil {
		return nil, err
	}
	traits, tags := s.Index.Names()
	if s.KnownTraits != nil {
		traits = append(traits, s.KnownTraits()...)
	}
	if s.KnownTags != nil {
		tags = append(tags, s.KnownTags()...)
	}
	has := func(list []string, name string) bool {
		for _, x := range list {
			if x == name {
				return true
			}
		}
		return false
	}
	for _, dep := range Deps(plan) {
		kind, name, _ := strings.Cut(dep, ":")
		var known []string
		switch kind {
		case "trait":
			known = traits
		case "tag":
			known = tags
		default:
			continue
		}
		if has(known, name) {
			continue
		}
		if guess := didyoumean.Suggest(name, known); guess != "" {
			if kind == "tag" {
				return nil, invalid("unknown tag %q: did you mean %q?", name, guess)
			}
			return nil, invalid("unknown trait %s: did you mean %s?", name, guess)
		}
	}
	return plan, nil
}

// Names lists the trait and tag names the index has seen on profiles.
func (ix *Index) Names() (traits, tags []string) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for n := range ix.traits {
		traits = append(traits, n)
	}
	for n := range ix.tags {
		tags = append(tags, n)
	}
	sort.Strings(traits)
	sort.Strings(tags)
	return traits, tags
}
