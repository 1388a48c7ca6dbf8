// Package exprcmp holds what the fast paths beside the expr VM (tag rules,
// computed-trait filters) share: the meaning of a comparison operator.
package exprcmp

// Holds reports whether op holds for a comparison whose operands compare
// as c (negative: less, zero: equal, positive: greater). op is one of
// ==, !=, <, <=, >, >=.
func Holds(op string, c int) bool {
	switch op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}
