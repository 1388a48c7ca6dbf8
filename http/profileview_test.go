package http_test

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The 360 view answers in one call what the per-part endpoints answer
// separately, and each of its parts equals that endpoint's answer.
func TestProfileViewEqualsItsParts(t *testing.T) {
	e := newConsoleEnv(t)
	seg := e.createSegment(t, "guangdong", `traits.province == "广东省"`)
	// u21: 广东省, one order, a survey (nps 10: a promoter).
	code, lk := e.get(t, "/v1/profiles/lookup?type=user_id&value=u21")
	if code != 200 {
		t.Fatalf("lookup: %d %v", code, lk)
	}
	id := lk["id"].(string)
	code, v := e.get(t, "/v1/profiles/"+id+"/view")
	if code != 200 {
		t.Fatalf("view: %d %v", code, v)
	}
	if errs := v["errors"].(map[string]any); len(errs) != 0 {
		t.Errorf("parts failed: %v", errs)
	}
	same := func(part string, got, want any) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s differs from its endpoint:\nview     %s\nendpoint %s", part, g, w)
		}
	}
	same("profile", v["profile"], lk)
	_, evs := e.get(t, "/v1/profiles/"+id+"/events?limit=50")
	same("events", v["events"], evs)
	if n := len(evs["events"].([]any)); n != 3 {
		t.Errorf("%d events on u21, want 3", n)
	}
	_, ms := e.get(t, "/v1/profiles/"+id+"/merges")
	same("merges", v["merges"], ms["merges"])
	_, ss := e.get(t, "/v1/profiles/"+id+"/segments")
	same("segments", v["segments"], ss)
	if segs := ss["segments"].([]any); len(segs) != 1 || segs[0].(map[string]any)["id"] != seg {
		t.Errorf("u21 is in %v, want the guangdong segment", segs)
	}
	_, is := e.get(t, "/v1/profiles/"+id+"/issues")
	same("issues", v["issues"], is["issues"])

	// Every trait but the history once, in the dimension the schema gives
	// it, with its provenance.
	_, schema := e.get(t, "/v1/traits")
	dimOf := map[string]string{}
	for _, f := range schema["traits"].([]any) {
		f := f.(map[string]any)
		dimOf[f["name"].(string)] = f["dimension"].(string)
	}
	traits := lk["traits"].(map[string]any)
	seen := map[string]bool{}
	var order []string
	for _, g := range v["traits"].([]any) {
		g := g.(map[string]any)
		d := g["dimension"].(string)
		order = append(order, d)
		for _, x := range g["traits"].([]any) {
			x := x.(map[string]any)
			name := x["name"].(string)
			if seen[name] {
				t.Errorf("%s listed twice", name)
			}
			seen[name] = true
			if want := dimOf[name]; want != "" && want != d {
				t.Errorf("%s under %s, the schema says %s", name, d, want)
			}
			tv := traits[name].(map[string]any)
			if !reflect.DeepEqual(x["value"], tv["value"]) || x["source"] != tv["source"] || x["time"] != tv["time"] || x["message_id"] != tv["message_id"] {
				t.Errorf("%s: view %v, profile %v", name, x, tv)
			}
		}
	}
	if len(seen) != len(traits)-1 || seen["lifecycle_history"] {
		t.Errorf("view lists %d traits, the profile has %d besides the history", len(seen), len(traits)-1)
	}
	if len(order) == 0 || order[0] != "basic" {
		t.Errorf("dimension order %v", order)
	}

	// Tags carry their definition's labels; the lifecycle its history.
	var promoter map[string]any
	for _, tg := range v["tags"].([]any) {
		if tg := tg.(map[string]any); tg["name"] == "promoter" {
			promoter = tg
		}
	}
	if promoter == nil || promoter["name_zh"] != "推荐者" || promoter["dimension"] != "feedback" {
		t.Errorf("promoter tag %v in %v", promoter, v["tags"])
	}
	lc := v["lifecycle"].(map[string]any)
	hist := lc["history"].([]any)
	if len(hist) == 0 || lc["stage"] != traits["lifecycle_stage"].(map[string]any)["value"] || lc["history_kept"] != 50.0 || lc["truncated"] != false {
		t.Errorf("lifecycle %v", lc)
	}
	if last := hist[len(hist)-1].(map[string]any); last["stage"] != lc["stage"] {
		t.Errorf("the history ends in %v, the stage is %v", last["stage"], lc["stage"])
	}
	// RFM scores need boundaries (none in this environment): the part is
	// there, with nulls.
	r, _ := traits["rfm_r"].(map[string]any)
	if rfm := v["rfm"].(map[string]any); len(rfm) != 5 || rfm["r"] != r["value"] {
		t.Errorf("rfm %v, trait %v", rfm, r)
	}

	if code, out := e.get(t, "/v1/profiles/p_nobody/view"); code != 404 || errMessage(out) == "" {
		t.Errorf("unknown profile: %d %v", code, out)
	}
	if code, out := e.get(t, "/v1/profiles/"+id+"/view?events=0"); code != 400 {
		t.Errorf("events=0: %d %v", code, out)
	}
	if _, small := e.get(t, "/v1/profiles/"+id+"/view?events=2"); len(small["events"].(map[string]any)["events"].([]any)) != 2 || small["events"].(map[string]any)["next"] == "" {
		t.Errorf("a first page of 2: %v", small["events"])
	}
}
