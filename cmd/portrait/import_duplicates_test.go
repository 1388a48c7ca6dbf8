package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A second CRM file brings a known customer again under another id, with
// the phone and e-mail typed differently: the one-user_id limit keeps the
// profiles apart, and the import summary lists them as probable duplicates,
// in JSON and in the text a person reads. The first import has none.
func TestImportSummaryListsProbableDuplicates(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	first := filepath.Join(dir, "shop.csv")
	second := filepath.Join(dir, "crm.csv")
	os.WriteFile(first, []byte("customer_id,name,email,phone\nc1,朱秀英,zhu.xiuying@qq.com,138 1234 5678\nc2,王芳,wangfang@163.com,13900001111\n"), 0o600)
	os.WriteFile(second, []byte("customer_id,name,email,phone\nCRM-9,朱秀英,Zhu.Xiuying@QQ.com,+86 138-1234-5678\nCRM-10,王小明,xm@163.com,13900001111\n"), 0o600)
	type summary struct {
		ProbableDuplicates *struct {
			Count int `json:"count"`
			Pairs []struct {
				Shared []struct{ Type, Value string } `json:"shared"`
			} `json:"pairs"`
		} `json:"probable_duplicates"`
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"import", "--source", "shop", "--data", data, "--json", first}, &out, &errb); err != nil {
		t.Fatalf("%v %s", err, errb.String())
	}
	var s summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err, out.String())
	}
	if s.ProbableDuplicates == nil || s.ProbableDuplicates.Count != 0 {
		t.Fatalf("first import: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"import", "--source", "crm", "--data", data, "--json", second}, &out, &errb); err != nil {
		t.Fatalf("%v %s", err, errb.String())
	}
	s = summary{}
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err, out.String())
	}
	if s.ProbableDuplicates == nil || s.ProbableDuplicates.Count != 1 || len(s.ProbableDuplicates.Pairs[0].Shared) != 2 {
		t.Fatalf("second import: probable duplicates %s", out.String())
	}
	// The text summary shows them too (re-importing the file adds no
	// event but reports the same pairs).
	out.Reset()
	if err := run(context.Background(), []string{"import", "--source", "crm", "--data", data, second}, &out, &errb); err != nil {
		t.Fatalf("%v %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "probable duplicates 1") || !strings.Contains(out.String(), "+8613812345678") {
		t.Errorf("text summary:\n%s", out.String())
	}
}
