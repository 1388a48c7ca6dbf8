package segment_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

// The kept value follows each upsert and removal, and EachKept sees it with
// the profile's current tags, within a scope.
func TestIndexKeepsAValuePerProfile(t *testing.T) {
	ix := segment.NewIndex()
	ix.SetKeep(func(p *portrait.Profile) any {
		if v, ok := p.Traits["nps"]; ok {
			return v.Value
		}
		return nil
	})
	put := func(id string, nps any, tags ...string) {
		p := &portrait.Profile{ID: id, Traits: map[string]portrait.Trait{}}
		if nps != nil {
			p.Traits["nps"] = portrait.Trait{Value: nps}
		}
		for _, tg := range tags {
			p.Tags = append(p.Tags, portrait.ProfileTag{Name: tg})
		}
		ix.Upsert(p, nil)
	}
	each := func(within *roaring.Bitmap) map[string][]any {
		out := map[string][]any{}
		if err := ix.EachKept(within, true, func(id string, v any, tags []string) error {
			out[id] = []any{v, tags}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	put("张三", 9.0, "vip", "promoter")
	put("李四", 3.0)
	put("王芳", nil, "vip")
	want := map[string][]any{"张三": {9.0, []string{"promoter", "vip"}}, "李四": {3.0, []string(nil)}}
	if got := each(nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	put("李四", nil)         // answer gone: nothing kept
	put("王芳", 7.0, "vip")  // answered
	put("张三", 10.0, "vip") // answered again, tag dropped
	ix.Remove("张三")
	want = map[string][]any{"王芳": {7.0, []string{"vip"}}}
	if got := each(nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("after changes: kept %v, want %v", got, want)
	}
	if got := each(ix.Numbers([]string{"李四"})); len(got) != 0 {
		t.Fatalf("within a scope without answers: %v", got)
	}
}

// Through the processor hook (OnChange, queued for Run) the kept value is
// read from the profile's state as it was at the change, though segments
// otherwise snapshot only traits, tags and identifiers.
func TestKeptValueSurvivesTheChangeQueue(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ix := segment.NewIndex()
	ix.SetKeep(func(p *portrait.Profile) any {
		if raw := p.State["survey"]; len(raw) > 0 {
			return string(raw)
		}
		return nil
	})
	svc := segment.NewService(ix, newMemStore())
	go svc.Run(ctx, time.Hour)
	p := &portrait.Profile{ID: "张三", Traits: map[string]portrait.Trait{}, State: map[string]json.RawMessage{"survey": []byte(`{"nps":9}`)}}
	svc.OnChange([]*portrait.Profile{p}, nil, nil)
	copy(p.State["survey"], `{"nps":0}`) // the processor reuses its profiles
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got []any
		ix.EachKept(nil, false, func(id string, v any, _ []string) error {
			got = append(got, id, v)
			return nil
		})
		if len(got) > 0 {
			if !reflect.DeepEqual(got, []any{"张三", `{"nps":9}`}) {
				t.Fatalf("kept %v", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing kept after the change was applied")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A change whose application is cut short by shutdown is not reported as a
// failure: the next start reconciles membership with the recorded history.
func TestShutdownDuringAnUpdateIsNotAnError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	svc := segment.NewService(segment.NewIndex(), newMemStore())
	var logged strings.Builder
	var mu sync.Mutex
	svc.Log = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))
	entered := make(chan struct{})
	svc.Behaviour = func(ctx context.Context, p *portrait.Profile) (segment.Summary, error) {
		close(entered)
		<-ctx.Done() // the store read is cancelled by the shutdown
		return nil, ctx.Err()
	}
	done := make(chan struct{})
	go func() { svc.Run(ctx, time.Hour); close(done) }()
	p := &portrait.Profile{ID: "张三", Traits: map[string]portrait.Trait{}, TrackCounts: map[string]int{"Order Completed": 1}}
	svc.OnChange([]*portrait.Profile{p}, nil, nil)
	<-entered
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if out := logged.String(); strings.Contains(out, "level=ERROR") || !strings.Contains(out, "interrupted by shutdown") {
		t.Fatalf("log at shutdown:\n%s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
