package profile

import (
	"context"
	"reflect"
	"testing"
)

type stubStore struct{ Store }

type stubCarrier struct{ AccountCarrier }

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
			stub := reflect.ValueOf(&stubStore{})
			if !stub.Type().Implements(f.Type()) {
				stub = reflect.ValueOf(&stubCarrier{})
			}
			f.Set(stub)
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
	p.decisions, p.decisionsHeld = 3, true
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
	if f.graph != nil || f.profiles != nil || f.retracted != nil || f.decisionsHeld {
		t.Errorf("the fork shares its parent's caches")
	}
}

// versionedStore counts the reads of the retractions and splits of a
// store whose version of them the test moves.
type versionedStore struct {
	Store
	version     int64
	reads       int
	retractions []string
}

func (s *versionedStore) DecisionsVersion(context.Context) (int64, error) { return s.version, nil }
func (s *versionedStore) LoadRetracted(context.Context) ([]string, error) {
	s.reads++
	return s.retractions, nil
}
func (s *versionedStore) LoadSplits(context.Context) ([]*Split, error) { return nil, nil }

// A partitioned processor reads the retractions and splits again only
// when their version moved (they were read in full before every batch),
// and after a batch that failed, which may have changed the ones it held.
func TestDecisionsReadAgainOnlyWhenTheirVersionMoved(t *testing.T) {
	ctx := context.Background()
	st := &versionedStore{version: 1, retractions: []string{"m1"}}
	p := &Processor{Store: st, Partitioned: true}
	for range 3 {
		if err := p.loadShared(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st.reads != 1 || !p.retracted["m1"] {
		t.Fatalf("three batches at one version: %d reads, retracted %v; want 1 read", st.reads, p.retracted)
	}
	st.version, st.retractions = 2, []string{"m1", "m2"}
	if err := p.loadShared(ctx); err != nil {
		t.Fatal(err)
	}
	if st.reads != 2 || !p.retracted["m2"] {
		t.Fatalf("after the version moved: %d reads, retracted %v; want them read again", st.reads, p.retracted)
	}
	p.retracted["m3"] = true // a batch's retraction, then its transaction failed
	p.forgetCaches()
	if err := p.loadShared(ctx); err != nil {
		t.Fatal(err)
	}
	if st.reads != 3 || p.retracted["m3"] {
		t.Fatalf("after a failed batch: %d reads, retracted %v; want them read again", st.reads, p.retracted)
	}
}
