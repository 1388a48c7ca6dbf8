package traits_test

import (
	"context"
	"testing"

	"github.com/portrait-cdp/portrait/traits"
)

// After an upgrade that changed the default dimension and classification,
// the traits a server typed on first sight before it take the new defaults
// at open, in memory and in the store; a trait a person annotated keeps
// what they chose.
func TestLoadReappliesDefaultsToUnannotatedTraits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := open(t, dir)
	old := func(name string) traits.Field { // as the previous version stored them
		return traits.Field{Name: name, Type: traits.TypeString, Dimension: traits.DimBasic, Classification: traits.ClassInternal,
			Description: "typed on first sight", Origin: traits.OriginObserved, FirstSeen: t0}
	}
	annotated := old("email")
	annotated.Classification, annotated.Annotated = traits.ClassPublic, true
	legacy := old("mobile") // annotated before the flag existed: described by a person
	legacy.Description = "the store's contact number, published on receipts"
	clv := old("clv_12m")
	clv.Type = traits.TypeNumber
	if err := e.db.SaveSchemaFields(ctx, []traits.Field{old("phone"), clv, old("city"), annotated, legacy}); err != nil {
		t.Fatal(err)
	}

	svc := traits.NewService(e.db, e.en)
	if err := svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"phone":   {traits.DimBasic, traits.ClassConfidential}, // new default (issue 15: phone is 秘密)
		"clv_12m": {traits.DimValue, traits.ClassConfidential}, // new default
		"city":    {traits.DimBasic, traits.ClassInternal},     // default unchanged
		"email":   {traits.DimBasic, traits.ClassPublic},       // a person's choice
		"mobile":  {traits.DimBasic, traits.ClassInternal},     // a person's choice (legacy)
	}
	check := func(where string, fields map[string]traits.Field) {
		t.Helper()
		for name, w := range want {
			f, ok := fields[name]
			if !ok {
				t.Errorf("%s: %s missing", where, name)
				continue
			}
			if f.Dimension != w[0] || f.Classification != w[1] {
				t.Errorf("%s: %s is %s/%s, want %s/%s", where, name, f.Dimension, f.Classification, w[0], w[1])
			}
		}
	}
	mem := map[string]traits.Field{}
	for _, f := range e.en.Schema.Fields() {
		mem[f.Name] = f
	}
	check("after open", mem)
	stored, err := e.db.SchemaFields(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := map[string]traits.Field{}
	for _, f := range stored {
		st[f.Name] = f
	}
	check("in the store", st)

	// Annotating marks the field: a later change of defaults leaves it.
	if err := e.en.Schema.Annotate(traits.Field{Name: "phone", Dimension: traits.DimBasic, Classification: traits.ClassConfidential, Description: "typed on first sight"}); err != nil {
		t.Fatal(err)
	}
	if err := svc.FlushSchema(ctx); err != nil {
		t.Fatal(err)
	}
	e2 := open(t, t.TempDir())
	fs, _ := e.db.SchemaFields(ctx)
	if err := e2.db.SaveSchemaFields(ctx, fs); err != nil {
		t.Fatal(err)
	}
	if err := traits.NewService(e2.db, e2.en).Load(ctx); err != nil {
		t.Fatal(err)
	}
	if f, _ := e2.en.Schema.Lookup("phone"); f.Classification != traits.ClassConfidential || !f.Annotated {
		t.Errorf("annotated phone after another open: %+v, want confidential and annotated", f)
	}
}
