package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/account"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/sqlite"
)

// accountServer is the real server with the account follower running
// behind it, as serve wires them.
func accountServer(t *testing.T) (*server, *account.Service) {
	t.Helper()
	var svc *account.Service
	s := start(t, func(h *porthttp.Server, db *sqlite.DB) {
		svc = account.NewService(db, db, time.Now)
		svc.Notify = db.Appended
		h.Accounts, h.QualityStore, h.ImportRuns = svc, db, db
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { svc.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	})
	return s, svc
}

// sync waits until the processor and the account follower have applied
// every logged event.
func syncAccounts(t *testing.T, s *server, svc *account.Service) {
	t.Helper()
	s.settle(t)
	last, _ := s.db.LastSeq(context.Background())
	deadline := time.Now().Add(10 * time.Second)
	for !svc.Loaded() || svc.Applied() < last {
		if time.Now().After(deadline) {
			t.Fatalf("accounts stuck at %d of %d", svc.Applied(), last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *server) adminJSON(t *testing.T, method, path string, body any) resp {
	t.Helper()
	b, _ := json.Marshal(body)
	return s.do(t, method, path, b, map[string]string{"Authorization": "Bearer " + adminKey})
}

// freshQuality waits for a quality report of the current data: on a loaded
// machine the report costs over 50 ms, so the one cached before the test's
// writes is served marked stale until its background rebuild (at least 10 s
// after it was computed) replaces it.
func freshQuality(t *testing.T, s *server) resp {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := s.get(t, "/v1/quality")
		f, _ := r.body["freshness"].(map[string]any)
		if r.status != 200 || f["stale"] != true {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("the quality report is still stale after a minute: %s", r.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAccountsThroughTheAPI(t *testing.T) {
	s, svc := accountServer(t)
	batch := `{"batch":[
	 {"type":"group","userId":"u-eb","groupId":"acct-9","messageId":"g1","timestamp":"2026-11-01T08:00:00Z","traits":{"uscc":"914403001922038216","name":"华为技术有限公司","industry":"C392","employees":200000,"revenue":6e11,"province":"广东省","website":"https://www.huawei.com"}},
	 {"type":"identify","userId":"u-eb","messageId":"i1","timestamp":"2026-11-01T08:00:00Z","traits":{"name":"张伟","email":"zhang.wei@huawei.com","buying_role":"EB","level":"决策层"}},
	 {"type":"identify","userId":"u-tb","messageId":"i2","timestamp":"2026-11-01T08:00:00Z","traits":{"name":"李娜","buying_role":"TB","level":"senior","buying_role_status":"presumed","buying_role_reasoning":"负责IT采购"}},
	 {"type":"group","userId":"u-tb","groupId":"acct-9","messageId":"g2","timestamp":"2026-11-01T08:01:00Z"},
	 {"type":"track","userId":"u-tb","event":"Sales Visit","messageId":"t1","timestamp":"2026-11-02T08:00:00Z","properties":{"account_id":"acct-9"}},
	 {"type":"group","userId":"u-x","groupId":"acct-bad","messageId":"g3","timestamp":"2026-11-01T08:00:00Z","traits":{"uscc":"914403001922038217","name":"坏代码公司"}}
	]}`
	if r := s.post(t, "/v1/batch", batch); r.status != 200 {
		t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	syncAccounts(t, s, svc)

	r := s.get(t, "/v1/accounts?sort=icp_score")
	rows, _ := r.body["accounts"].([]any)
	if r.status != 200 || len(rows) != 2 {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	top := rows[0].(map[string]any)
	if top["name"] != "华为技术有限公司" || top["icp_score"].(float64) <= rows[1].(map[string]any)["icp_score"].(float64) || len(top["icp_reasons"].([]any)) != 5 {
		t.Fatalf("ranking %s", r.raw)
	}
	id := top["id"].(string)

	r = s.get(t, "/v1/accounts/"+id)
	cov := r.body["coverage"].(map[string]any)
	gaps := fmt.Sprint(cov["gaps"])
	if !strings.Contains(gaps, "TB presumed, not verified") || !strings.Contains(gaps, "no UB identified") || strings.Contains(gaps, "决策层") {
		t.Fatalf("coverage %v", cov)
	}
	if tr := r.body["traits"].(map[string]any)["industry_name"].(map[string]any); tr["value"] != "通信设备制造" || tr["group"] != "industry" {
		t.Fatalf("industry %v", tr)
	}

	r = s.get(t, "/v1/accounts/"+id+"/people")
	people := r.body["people"].([]any)
	if len(people) != 2 {
		t.Fatalf("people %s", r.raw)
	}
	eb := people[0].(map[string]any)
	if eb["person"] != "user_id:u-eb" || eb["name"] != "张伟" || eb["profile_id"] == nil || eb["level_name"] != "决策层" {
		t.Fatalf("EB %v", eb)
	}

	// Verification by a named user, then the gap is gone.
	r = s.adminJSON(t, "POST", "/v1/accounts/"+id+"/people/user_id:u-tb/verify", map[string]any{"by": "王经理"})
	if r.status != 200 || r.body["role"].(map[string]any)["verified_by"] != "王经理" || r.body["role"].(map[string]any)["status"] != "verified" {
		t.Fatalf("verify role: %d %s", r.status, r.raw)
	}
	r = s.adminJSON(t, "POST", "/v1/accounts/"+id+"/verify", map[string]any{"trait": "employees", "value": 207000, "by": "王经理"})
	emp := r.body["traits"].(map[string]any)["employees"].(map[string]any)
	if r.status != 200 || emp["status"] != "verified" || emp["value"] != 207000.0 || emp["previous"] != 200000.0 || emp["verified_at"] == nil {
		t.Fatalf("verify trait: %d %s", r.status, r.raw)
	}
	if strings.Contains(fmt.Sprint(r.body["coverage"]), "TB presumed") {
		t.Fatal("gap still listed after verification")
	}
	// A presumed value needs its reasoning; a bad USCC is refused.
	if r = s.adminJSON(t, "PATCH", "/v1/accounts/"+id, map[string]any{"traits": map[string]any{"revenue": 1}, "status": "presumed"}); r.status != 400 {
		t.Fatalf("presumed without reasoning: %d", r.status)
	}
	if r = s.adminJSON(t, "POST", "/v1/accounts", map[string]any{"uscc": "91110000802100433C", "traits": map[string]any{"name": "x"}}); r.status != 400 || !strings.Contains(r.raw, "check character") {
		t.Fatalf("bad uscc: %d %s", r.status, r.raw)
	}
	r = s.adminJSON(t, "POST", "/v1/accounts", map[string]any{"uscc": "91330100716105852F", "domain": "alibaba.com", "parent": id,
		"traits": map[string]any{"name": "阿里巴巴(中国)有限公司", "revenue": 1e11}, "status": "presumed", "reasoning": "年报估算", "by": "李四"})
	if r.status != 201 || r.body["parent"] != id {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	r = s.get(t, "/v1/accounts/lookup?type=domain&value=www.alibaba.com")
	if r.status != 200 || r.body["traits"].(map[string]any)["revenue"].(map[string]any)["status"] != "presumed" {
		t.Fatalf("lookup: %d %s", r.status, r.raw)
	}
	if r = s.get(t, "/v1/accounts/"+id); r.body["rollup"].(map[string]any)["revenue"] != 6e11+1e11 {
		t.Fatalf("rollup %v", r.body["rollup"])
	}

	// The refused USCC is in the quality report like any invalid value.
	r = freshQuality(t, s)
	if !strings.Contains(r.raw, "the check character (the 18th) does not match the first 17") {
		t.Fatalf("quality report lacks the USCC issue: %s", r.raw)
	}

	// The target list exports as CSV, one line per key person.
	r = s.do(t, "GET", "/v1/accounts/export?industry=C", nil, map[string]string{"Authorization": "Bearer " + adminKey})
	if r.status != 200 || strings.Count(r.raw, "\n") != 3 || !strings.Contains(r.raw, "user_id:u-tb") {
		t.Fatalf("export: %d %q", r.status, r.raw)
	}
	r = s.adminJSON(t, "POST", "/v1/accounts/targets", map[string]any{"name": "Q1 华南", "industry": "C"})
	if r.status != 200 || r.body["people"] != 2.0 {
		t.Fatalf("targets: %d %s", r.status, r.raw)
	}
	s.settle(t)
	r = s.get(t, "/v1/profiles/lookup?type=user_id&value=u-tb")
	if tl := r.body["traits"].(map[string]any)["target_list"]; tl == nil || tl.(map[string]any)["value"] != "Q1 华南" {
		t.Fatalf("target list trait: %s", r.raw)
	}

	// Edits are journalled: a new follower over the same store rebuilds
	// the verifications, with who and when.
	again := account.NewService(s.db, s.db, time.Now)
	if err := again.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, ok := again.Model.Get(id)
	if !ok || v.Traits["employees"].VerifiedBy != "王经理" || v.Coverage.Roles["TB"] != account.StatusVerified || len(v.Children) != 1 {
		t.Fatalf("replayed %+v", v)
	}

	if r = s.get(t, "/v1/accounts/nope"); r.status != http.StatusNotFound {
		t.Fatalf("missing: %d", r.status)
	}
	if r = s.get(t, "/v1/accounts?sort=colour"); r.status != 400 {
		t.Fatalf("bad sort: %d", r.status)
	}
}
