package dataset

import (
	"strconv"
	"strings"
)

func itoa(i int) string        { return strconv.Itoa(i) }
func quote(s string) string    { return strconv.Quote(s) }
func isBlank(s string) bool    { return strings.TrimSpace(s) == "" }
func trimCell(s string) string { return strings.TrimSpace(strings.TrimPrefix(s, "\ufeff")) }
