package linkage_test

import (
	"testing"

	"github.com/portrait-cdp/portrait/linkage"
)

func TestInferKind(t *testing.T) {
	for col, want := range map[string]linkage.Kind{
		"given_name": linkage.KindName, "surname": linkage.KindName, "First Name": linkage.KindName, "姓名": linkage.KindName,
		"street_number": linkage.KindCode, "postcode": linkage.KindCode, "ZIP": linkage.KindCode, "邮编": linkage.KindCode,
		"address_1": linkage.KindAddress, "address_2": linkage.KindAddress, "地址": linkage.KindAddress,
		"date_of_birth": linkage.KindDate, "DOB": linkage.KindDate, "出生日期": linkage.KindDate, "signup_date": linkage.KindDate,
		"soc_sec_id": linkage.KindID, "phone": linkage.KindID, "Tel": linkage.KindID, "work_tel": linkage.KindID, "mobile_no": linkage.KindID, "Email": linkage.KindID, "身份证号": linkage.KindID,
		"state": linkage.KindCategory, "province": linkage.KindCategory, "gender": linkage.KindCategory,
		"suburb": linkage.KindText, "city": linkage.KindText, "公司名称": linkage.KindText, "hotel": linkage.KindText, "notes": linkage.KindText,
	} {
		if got := linkage.InferKind(col); got != want {
			t.Errorf("InferKind(%q) = %v, want %v", col, got, want)
		}
	}
	fields := linkage.InferFields([]string{"rec_id", "given_name", "postcode"}, "rec_id")
	if len(fields) != 2 || fields[0] != (linkage.Field{Name: "given_name", Kind: linkage.KindName}) {
		t.Errorf("InferFields = %v", fields)
	}
	for k := linkage.KindIgnore; k <= linkage.KindCategory; k++ {
		if back, ok := linkage.ParseKind(k.String()); !ok || back != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), back, ok)
		}
	}
}
