package account_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/tracking"
)

// Companies and their contacts come through the import pipeline: a CRM's
// company list in accounts mode (one group call per row, the primary
// contact as its user), the contacts in profiles mode with their roles;
// a bad USCC is kept out of the keys and reported with its reason.
func TestAccountAndContactImports(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	im := &importer.Importer{Log: db, Runs: db, Parser: tracking.New()}
	run := func(name, mapping, csv string) *importer.Summary {
		m, err := importer.ParseMapping([]byte(mapping))
		if err != nil {
			t.Fatal(err)
		}
		in := importer.Input{Name: name, Size: int64(len(csv)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader([]byte(csv))), nil }}
		sum, err := im.Import(ctx, in, importer.Options{Source: "crm", Format: "csv", Mapping: m})
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	companies := run("companies.csv", `
mode: accounts
identity: {group_id: "crm-{id}", user_id: contact}
columns:
  - {column: name, trait: name, kind: text}
  - {column: credit_code, trait: uscc}
  - {column: site, trait: domain}
  - {column: industry, trait: industry}
  - {column: staff, trait: employees, kind: number}
  - {column: parent, trait: parent}
`, "id,name,credit_code,site,industry,staff,contact,parent\n"+
		"1,华为技术有限公司,914403001922038216,www.huawei.com,C392,200000,p-1,\n"+
		"2,腾讯科技（深圳）有限公司,9144030071526726XH,tencent.com,I651,100000,p-2,crm-1\n"+
		",无编号公司,,,,,p-3,\n")
	if companies.Accepted != 2 || companies.Quarantined != 1 {
		t.Fatalf("companies: %+v", companies)
	}
	contacts := run("contacts.csv", `
mode: profiles
identity: {user_id: id}
columns:
  - {column: name, trait: name, kind: name}
  - {column: email, trait: email, kind: email}
  - {column: role, trait: buying_role}
  - {column: level, trait: level}
`, "id,name,email,role,level\np-1,张伟,zhang.wei@huawei.com,EB,决策层\np-9,刘洋,liu.yang@huawei.com,TB,高层\n")
	if contacts.Accepted != 2 {
		t.Fatalf("contacts: %+v", contacts)
	}
	svc := account.NewService(db, db, time.Now)
	if err := svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	hw, ok := svc.Model.Lookup(account.KeyGroup, "crm-1")
	if !ok || svc.Model.Len() != 2 {
		t.Fatalf("accounts %d", svc.Model.Len())
	}
	if id, _ := svc.Model.Lookup(account.KeyUSCC, "914403001922038216"); id != hw {
		t.Fatal("USCC key")
	}
	v, _ := svc.Model.Get(hw)
	// p-1 by the group call, p-9 by the domain of their email.
	if v.People != 2 || v.Coverage.Roles[account.RoleEB] != account.StatusReported || v.Coverage.Roles[account.RoleTB] != account.StatusReported || len(v.Children) != 1 {
		t.Fatalf("huawei %+v", v.Coverage)
	}
	issues, err := db.TraitIssues(ctx, "crm", 10)
	if err != nil || len(issues) != 1 || issues[0].Trait != "uscc" || !strings.Contains(issues[0].Reason, "check character") {
		t.Fatalf("issues %+v %v", issues, err)
	}
}
