package profile

import (
	"regexp"
	"strconv"
)

// The merge journal keeps its reasons as English sentences (rows written
// by every version stay readable as they are). ReasonCode reads one back
// as a code and its parameters, so that the console says it in the
// reader's language; the patterns follow the sentences replay.go,
// retain.go, split.go and resolve.go write (reason_test.go builds each
// one the way they do). An unknown sentence has no code: it is shown as
// written.
var reasonCodes = []struct {
	code   string
	re     *regexp.Regexp
	params []string
}{
	{"replay_late", regexp.MustCompile(`^made in the replay for (\d+) late event\(s\) from (\S+) on$`), []string{"n", "from"}},
	{"replay_profiles", regexp.MustCompile(`^made in the replay of (\d+) profile\(s\)$`), []string{"n"}},
	{"replay_without_event", regexp.MustCompile(`^made in the replay without event (.+)$`), []string{"message_id"}},
	{"replay_carried_forward", regexp.MustCompile(`^made in the replay under the decisions carried forward by (.+)$`), []string{"message_id"}},
	{"replay_split_undone", regexp.MustCompile(`^made in the replay after split (.+) was undone$`), []string{"message_id"}},
	{"replay_split", regexp.MustCompile(`^made in the replay under split (.+)$`), []string{"message_id"}},
}

// ReasonCode is the code and parameters of a merge's reason. A merge
// without a reason made through an identifier is "shared_identifier"
// (type); an unknown reason gives "" and nil.
func ReasonCode(reason, identifierType string) (string, map[string]any) {
	if reason == "" {
		if identifierType != "" {
			return "shared_identifier", map[string]any{"type": identifierType}
		}
		return "", nil
	}
	for _, c := range reasonCodes {
		m := c.re.FindStringSubmatch(reason)
		if m == nil {
			continue
		}
		ps := make(map[string]any, len(c.params))
		for i, name := range c.params {
			if n, err := strconv.Atoi(m[i+1]); err == nil && name == "n" {
				ps[name] = n
			} else {
				ps[name] = m[i+1]
			}
		}
		return c.code, ps
	}
	return "", nil
}
