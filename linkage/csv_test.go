package linkage_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/linkage"
)

func TestReadCSV(t *testing.T) {
	in := "\ufeffrec_id, given_name, postcode, date_of_birth\n" +
		"rec-1-org, kayla, 0800, 19150612\n" +
		"rec-1-dup-0, , 0800 , \n" +
		"rec-2-org, \"o'brien, jr\", 2000, 19800101\n"
	hdr, recs, err := linkage.ReadCSV(strings.NewReader(in), "people.csv")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(hdr, "|") != "rec_id|given_name|postcode|date_of_birth" {
		t.Errorf("header %q", hdr)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	if recs[0]["postcode"] != "0800" {
		t.Errorf("postcode lost its leading zero: %q", recs[0]["postcode"])
	}
	if _, ok := recs[1]["given_name"]; ok {
		t.Errorf("empty value should be missing, got %q", recs[1]["given_name"])
	}
	if recs[2]["given_name"] != "o'brien, jr" {
		t.Errorf("quoted value %q", recs[2]["given_name"])
	}
}

func TestReadCSVErrorsNameRowAndColumn(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		row      int
		column   string
		msg      string
	}{
		{"too many fields", "a,b,c\n1,2,3\n4,5,6,7\n", 3, "", "row 3, column 4"},
		{"too few fields", "a,b,c\n1,2,3\n4,5\n", 3, "c", "row 3, column 3 (c)"},
		{"bare quote", "a,b,c\n1,2,3\n4,x\"y,6\n", 3, "b", "row 3, column 2 (b)"},
		{"unterminated quote", "a,b,c\n1,\"2,3\n", 2, "b", "row 2, column 2 (b)"},
		{"duplicate header", "a,b,a\n1,2,3\n", 1, "a", "row 1, column 3 (a)"},
		{"empty header name", "a,,c\n1,2,3\n", 1, "", "row 1, column 2"},
		{"invalid utf-8", "a,b\n1,\xff\n", 2, "b", "row 2, column 2 (b)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := linkage.ReadCSV(strings.NewReader(tc.in), "x.csv")
			var pe *portrait.Error
			if !errors.As(err, &pe) || pe.Code != portrait.EINVALID {
				t.Fatalf("err = %v, want a portrait invalid error", err)
			}
			if !strings.Contains(pe.Message, tc.msg) || !strings.HasPrefix(pe.Message, "x.csv: ") {
				t.Errorf("message %q does not name %q", pe.Message, tc.msg)
			}
			if len(pe.Details) != 1 || pe.Details[0].Row != tc.row || pe.Details[0].Column != tc.column {
				t.Errorf("details %+v, want row %d column %q", pe.Details, tc.row, tc.column)
			}
		})
	}
	if _, _, err := linkage.ReadCSV(strings.NewReader(""), "empty.csv"); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("empty file: %v", err)
	}
}

func FuzzReadCSV(f *testing.F) {
	f.Add("a, b\n1, 2\n")
	f.Add("a,b\n\"x\n")
	f.Add("a,b\n1,2,3\n")
	f.Add("\ufeffa\n\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		hdr, recs, err := linkage.ReadCSV(strings.NewReader(in), "f.csv")
		if err != nil {
			var pe *portrait.Error
			if !errors.As(err, &pe) || pe.Code != portrait.EINVALID || len(pe.Details) != 1 || pe.Details[0].Row < 1 {
				t.Fatalf("error without a row: %#v", err)
			}
			return
		}
		for _, r := range recs {
			if len(r) > len(hdr) {
				t.Fatalf("record with %d fields, header %d", len(r), len(hdr))
			}
			for k, v := range r {
				if v == "" || strings.TrimSpace(v) != v {
					t.Fatalf("field %q kept untrimmed or empty value %q", k, v)
				}
			}
		}
	})
}
