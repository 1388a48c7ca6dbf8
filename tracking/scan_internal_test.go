package tracking

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var scanSeeds = []string{
	`{"batch":[{"type":"track","userId":"u1","event":"Order Completed","messageId":"m1","properties":{"revenue":12.5,"sku":"A"},"context":{"ip":"10.0.0.1"},"timestamp":"2026-04-30T10:00:00.000Z"}],"sentAt":"2026-04-30T10:00:01Z"}`,
	`{"batch":[{"type":"identify","userId":"u1","traits":{"name":"张三","n":[1,-2.5e3,true,null]},"anonymousId":"a1"},{"type":"page","anonymousId":"a2","name":"Home"}],"context":{"library":{"name":"x"}},"writeKey":"k"}`,
	` { "batch" : [ { "type" : "track" , "userId" : 42 , "event" : "x" } ] } `,
	`{"Batch":[{"type":"track","userId":"u","event":"x"}]}`,
	`{"batch":[{"Type":"track","userId":"u","event":"x"}]}`,
	`{"batch":[{"type":"track","userid":"u","event":"x"}]}`,
	`{"batch":[{"type":"track","userId":"u","userId":"v","event":"x"}]}`,
	`{"batch":[{"type":"track","user\u0049d":"u","event":"x"}]}`,
	`{"batch":[{"type":"track","userId":"u\u00e9\n","event":"x\"y"}]}`,
	`{"batch":[],"batch":[{"type":"track","userId":"u","event":"x"}]}`,
	`{"batch":null}`, `{"batch":{}}`, `{"batch":"x"}`, `{}`, `[]`, `null`, `{"batch":[1,"a",null,[],{}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"x"}],"writeKey":5}`,
	`{"batch":[{"type":"track","userId":"u","event":"x"}],"sentAt":5}`,
	`{"batch":[{"type":"track","userId":"u","event":"x","timestamp":"2026-04-30 10:00:00"}],"sentAt":"bad"}`,
	`{"batch":[{"type":"track","userId":"u","event":"x","timestamp":5}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"x","properties":[]}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"x","properties":{"a":01}}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"x","properties":{"a":1.}}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"x","properties":{"a":"\x"}}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"x"}],}`,
	`{"batch":[{"type":"track","userId":"u","event":"x"},]}`,
	`{"batch":[{"type":"track","userId":"u","event":"x"}]} x`,
	`{"batch":[{"type":"track","userId":"u","event":"x","ſentAt":"2026-04-30T10:00:01Z"}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"x","channel":"web","originalTimestamp":"2026-04-30T10:00:00Z","previousId":"p","groupId":"g"}]}`,
	`{"batch":[{"type":"alias","userId":"u","previousId":"p"},{"type":"group","userId":"u","groupId":7}]}`,
}

// The scanner is a shortcut, not a second parser: for any request it gives
// exactly what the go-json decoder gives (events, rejections and their
// reasons, errors), or leaves the request to the decoder.
func FuzzScanMatchesDecoder(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		compareScan(t, body)
	})
}

func compareScan(t *testing.T, body []byte) {
	t.Helper()
	at := time.Date(2026, 4, 30, 10, 0, 2, 0, time.UTC)
	run := func(fast bool) (string, string) {
		defer func() { fastScan = true }()
		fastScan = fast
		p := New()
		p.Blocked = func(v string) bool { return v == "null" }
		res, err := p.ParseBatch(body, "web", at)
		one, err1 := p.ParseSingle(body, "track", "web", at)
		return fmt.Sprintf("%v", err) + detail(res), fmt.Sprintf("%v", err1) + detail(one)
	}
	fb, fs := run(true)
	sb, ss := run(false)
	if fb != sb || fs != ss {
		t.Fatalf("scanner and decoder differ on %q:\nscanner %s\n        %s\ndecoder %s\n        %s", body, fb, fs, sb, ss)
	}
}

// detail spells out the events and rejections behind the pointers.
func detail(res *Result) string {
	if res == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, " %d events, %d rejected, %d too large", len(res.Events), len(res.Rejected), res.TooLarge)
	for _, e := range res.Events {
		fmt.Fprintf(&b, "\n%#v %q %q %q", *e, e.Traits, e.Properties, e.Context)
		if e.SentAt != nil {
			fmt.Fprintf(&b, " sent %s", e.SentAt)
		}
		if e.OriginalTimestamp != nil {
			fmt.Fprintf(&b, " orig %s", e.OriginalTimestamp)
		}
	}
	for _, r := range res.Rejected {
		fmt.Fprintf(&b, "\n%#v %q", *r, r.Raw)
	}
	return b.String()
}

func TestScanMatchesDecoderOnSeeds(t *testing.T) {
	for _, s := range scanSeeds {
		compareScan(t, []byte(s))
	}
}

// The common request is read by the scanner, not by the decoder; a
// request it does not take is read by the decoder (the seeds above check
// both give the same).
func TestScannerTakesTheCommonRequest(t *testing.T) {
	if _, ok := scanBatch([]byte(scanSeeds[0])); !ok {
		t.Fatal("the scanner left a plain batch to the decoder")
	}
	if _, ok := scanWire([]byte(`{"type":"identify","userId":"u1","traits":{"name":"张三"},"anonymousId":"a1"}`)); !ok {
		t.Fatal("the scanner left a plain event to the decoder")
	}
	for _, s := range []string{`{"type":"track","userid":"u"}`, `{"type":"track","type":"page"}`, `{"typ\u0065":"track"}`, `{"type":"track",}`} {
		if _, ok := scanWire([]byte(s)); ok {
			t.Errorf("the scanner took %s", s)
		}
	}
	// What the event keeps is copied out of the request.
	body := []byte(scanSeeds[0])
	res, err := New().ParseBatch(body, "web", time.Now())
	if err != nil || len(res.Events) != 1 {
		t.Fatal(res, err)
	}
	for i := range body {
		body[i] = 'x'
	}
	if e := res.Events[0]; string(e.Properties) != `{"revenue":12.5,"sku":"A"}` || string(e.Context) != `{"ip":"10.0.0.1"}` {
		t.Fatalf("the event's objects share the request's bytes: %s %s", e.Properties, e.Context)
	}
}

// BenchmarkParseBatch parses a batch of 100 events of the mix `portrait
// bench ingest` sends, with the scanner and with the decoder alone, in the
// same run.
func BenchmarkParseBatch(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"batch":[`)
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		switch {
		case i%10 == 0:
			fmt.Fprintf(&sb, `{"anonymousId":"anon-%06d","context":{"ip":"10.0.0.1","library":{"name":"analytics-node","version":"2.1.0"},"userAgent":"bench"},"messageId":"bench-%09d","timestamp":"2026-11-05T22:03:30.139309851Z","traits":{"city":"上海市","email":"user%06d@example.com","name":"王芳","plan":"pro"},"type":"identify","userId":"user-%06d"}`, i, i, i, i)
		case i%10 < 7:
			fmt.Fprintf(&sb, `{"anonymousId":"anon-%06d","context":{"ip":"10.0.0.1","library":{"name":"analytics-node","version":"2.1.0"},"userAgent":"bench"},"event":"Order Completed","messageId":"bench-%09d","properties":{"category":"数码 Electronics","currency":"CNY","revenue":312.28,"sku":"SKU-0966"},"timestamp":"2026-11-05T22:03:30.139309851Z","type":"track","userId":"user-%06d"}`, i, i, i)
		default:
			fmt.Fprintf(&sb, `{"anonymousId":"anon-%06d","context":{"ip":"10.0.0.1","library":{"name":"analytics-node","version":"2.1.0"},"userAgent":"bench"},"messageId":"bench-%09d","name":"Home","properties":{"path":"/","referrer":"https://www.baidu.com/"},"timestamp":"2026-11-05T22:03:30.139309851Z","type":"page"}`, i, i)
		}
	}
	sb.WriteString(`],"sentAt":"2026-12-05T22:03:20.188195193Z"}`)
	body := []byte(sb.String())
	at := time.Date(2026, 12, 5, 22, 3, 21, 0, time.UTC)
	for _, c := range []struct {
		name string
		fast bool
	}{{"scanner", true}, {"decoder", false}} {
		b.Run(c.name, func(b *testing.B) {
			fastScan = c.fast
			defer func() { fastScan = true }()
			p := New()
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				res, err := p.ParseBatch(body, "bench", at)
				if err != nil || len(res.Events) != 100 {
					b.Fatal(len(res.Events), err)
				}
			}
		})
	}
}
