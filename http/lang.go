package http

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// requestLang is the caller's language for labels: "zh" or "en". The lang
// parameter wins (lang=zh, zh-CN, en...); then Accept-Language by its
// q-values; English when neither names one of the two.
func requestLang(r *http.Request) string {
	if l := langOf(r.URL.Query().Get("lang")); l != "" {
		return l
	}
	type pref struct {
		lang string
		q    float64
	}
	var prefs []pref
	for i, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if l := langOf(tag); l != "" && q > 0 {
			// Equal weights keep the header's order.
			prefs = append(prefs, pref{l, q - float64(i)*1e-6})
		}
	}
	sort.SliceStable(prefs, func(i, j int) bool { return prefs[i].q > prefs[j].q })
	if len(prefs) > 0 {
		return prefs[0].lang
	}
	return "en"
}

func langOf(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	switch {
	case tag == "zh" || strings.HasPrefix(tag, "zh-") || strings.HasPrefix(tag, "zh_"):
		return "zh"
	case tag == "en" || strings.HasPrefix(tag, "en-") || strings.HasPrefix(tag, "en_"):
		return "en"
	}
	return ""
}
