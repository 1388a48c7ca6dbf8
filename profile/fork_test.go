package profile

import (
	"reflect"
	"testing"
)

type stubStore struct{ Store }

// A fork carries every setting of the processor it came from (a setting
// added to Processor and not to Fork would be lost on the partitioned
// nodes only), and none of its caches.
func TestForkKeepsEverySetting(t *testing.T) {
	p := &Processor{}
	v := reflect.ValueOf(p).Elem()
	for i := range v.NumField() {
		f, ft := v.Field(i), v.Type().Field(i)
		if !ft.IsExported() {
			continue
		}
		switch f.Kind() {
		case reflect.Func:
			f.Set(reflect.MakeFunc(f.Type(), func([]reflect.Value) []reflect.Value { return nil }))
		case reflect.Pointer, reflect.Map, reflect.Slice:
			if f.Kind() == reflect.Pointer {
				f.Set(reflect.New(f.Type().Elem()))
			} else if f.Kind() == reflect.Map {
				f.Set(reflect.MakeMap(f.Type()))
			} else {
				f.Set(reflect.MakeSlice(f.Type(), 1, 1))
			}
		case reflect.Interface:
			f.Set(reflect.ValueOf(&stubStore{}))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", ft.Name, f.Kind())
		}
	}
	p.resetCaches()
	p.retracted = map[string]bool{"m": true}
	p.decisions = 3
	fk := reflect.ValueOf(p.Fork()).Elem()
	for i := range v.NumField() {
		f, g, ft := v.Field(i), fk.Field(i), v.Type().Field(i)
		if !ft.IsExported() {
			continue
		}
		same := false
		switch f.Kind() {
		case reflect.Func, reflect.Pointer, reflect.Map, reflect.Slice:
			same = f.Pointer() == g.Pointer()
		default:
			same = f.Interface() == g.Interface()
		}
		if !same {
			t.Errorf("the fork's %s is not its parent's", ft.Name)
		}
	}
	f := p.Fork()
	if f.graph != nil || f.profiles != nil || f.retracted != nil || f.decisions != 0 {
		t.Errorf("the fork shares its parent's caches")
	}
}
