package http_test

import "testing"

// GET /v1/profiles/{id}/segments lists the segments the profile is in, as
// the explanations say one by one.
func TestProfileSegmentsEqualsExplanations(t *testing.T) {
	e := newConsoleEnv(t)
	gd := e.createSegment(t, "guangdong", `traits.province == "广东省"`)
	sh := e.createSegment(t, "shanghai", `traits.province == "上海市"`)
	all := e.createSegment(t, "not guangdong", `traits.province != "广东省"`)
	checked := 0
	for _, c := range e.customers[:10] {
		_, p := e.get(t, "/v1/profiles/lookup?type=user_id&value="+c.user)
		id, _ := p["id"].(string)
		if id == "" {
			t.Fatalf("lookup %s: %v", c.user, p)
		}
		code, out := e.get(t, "/v1/profiles/"+id+"/segments")
		if code != 200 || out["indexed"] != true {
			t.Fatalf("%s: %d %v", id, code, out)
		}
		got := map[string]bool{}
		for _, s := range out["segments"].([]any) {
			got[s.(map[string]any)["id"].(string)] = true
		}
		for _, seg := range []string{gd, sh, all} {
			_, ex := e.get(t, "/v1/segments/"+seg+"/explain/"+id)
			if ex["member"] != got[seg] {
				t.Errorf("%s (%s) in %s: list says %v, explanation %v", id, c.province, seg, got[seg], ex["member"])
			}
			checked++
		}
	}
	if code, out := e.get(t, "/v1/profiles/nobody/segments"); code != 200 || out["indexed"] != false || len(out["segments"].([]any)) != 0 {
		t.Errorf("unknown profile: %d %v", code, out)
	}
	if checked == 0 {
		t.Fatal("nothing compared")
	}
}
