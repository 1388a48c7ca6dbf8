package tag

import (
	"sort"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/portrait-cdp/portrait/internal/didyoumean"
)

// Tag rules and segments share one expression language: a trait is named
// by its bare name (revenue) or as traits.revenue / traits["revenue"], and
// both mean the same in either. Rules run over the bare names, so the
// dotted forms are rewritten before anything reads the rule.
type traitsPatcher struct{}

func (traitsPatcher) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok || m.Optional {
		return
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "traits" {
		return
	}
	if s, ok := m.Property.(*ast.StringNode); ok && s.Value != "" {
		ast.Patch(node, &ast.IdentifierNode{Value: s.Value})
	}
}

// parseRule parses a rule with traits.x read as x.
func parseRule(src string) (*parser.Tree, error) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, err
	}
	ast.Walk(&tree.Node, traitsPatcher{})
	return tree, nil
}

// unknownNames lists the names a rule reads that env does not define, in
// order of appearance (names a rule declares with let are its own).
func unknownNames(tree *parser.Tree, env map[string]any) []string {
	u := &unknownCollector{env: env, declared: map[string]bool{}, seen: map[string]bool{}}
	ast.Walk(&tree.Node, u)
	return u.names
}

type unknownCollector struct {
	env            map[string]any
	declared, seen map[string]bool
	names          []string
}

func (u *unknownCollector) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.VariableDeclaratorNode:
		u.declared[x.Name] = true
	case *ast.IdentifierNode:
		if _, ok := u.env[x.Value]; !ok && !u.declared[x.Value] && !u.seen[x.Value] {
			u.seen[x.Value] = true
			u.names = append(u.names, x.Value)
		}
	}
}

// suggestion is " did you mean x?" for the first unknown name of a rule
// that is a typo away from a known trait, or "".
func suggestion(tree *parser.Tree, env map[string]any) string {
	known := make([]string, 0, len(env))
	for k := range env {
		known = append(known, k)
	}
	sort.Strings(known)
	for _, name := range unknownNames(tree, env) {
		if g := didyoumean.Suggest(name, known); g != "" {
			return " (unknown trait " + name + ": did you mean " + g + "?)"
		}
	}
	return ""
}
