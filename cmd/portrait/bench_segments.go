package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

// The benchmark segment: 2 tags, 1 range, 1 province, 1 behavioural clause.
const benchSegmentExpr = `"vip" in tags && "high_value" in tags && traits.age in 25..40 && traits.province == "广东省" && event_count("Order Completed", "30d", amount > 500) >= 2`

var benchProvinces = []string{"广东省", "广东省", "广东省", "浙江省", "江苏省", "北京市", "上海市", "四川省", "山东省", "河南省", "湖北省", "福建省"}
var benchCities = map[string][]string{"广东省": {"广州市", "深圳市", "佛山市", "东莞市"}, "浙江省": {"杭州市", "宁波市"}, "江苏省": {"南京市", "苏州市"},
	"北京市": {"北京市"}, "上海市": {"上海市"}, "四川省": {"成都市"}, "山东省": {"济南市", "青岛市"}, "河南省": {"郑州市"}, "湖北省": {"武汉市"}, "福建省": {"福州市", "厦门市"}}

type benchOrder struct {
	at     time.Time
	amount float64
}

type benchProfile struct {
	p      *portrait.Profile
	orders []benchOrder
}

// genBenchProfile derives profile i from its number alone, so that the
// index and the SQL tables are loaded with the same data without keeping a
// million profiles in memory.
func genBenchProfile(i int, now time.Time) benchProfile {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	prov := benchProvinces[r.IntN(len(benchProvinces))]
	cities := benchCities[prov]
	id := "p" + strconv.Itoa(i)
	p := &portrait.Profile{ID: id, Traits: map[string]portrait.Trait{
		"age":      {Value: float64(18 + r.IntN(55))},
		"province": {Value: prov},
		"city":     {Value: cities[r.IntN(len(cities))]},
		"gender":   {Value: []string{"female", "male"}[r.IntN(2)]},
		"revenue":  {Value: float64(r.IntN(200000)) / 10},
		"email":    {Value: id + "@example.cn"},
	}, Identifiers: []portrait.Identifier{{Type: "email", Value: id + "@example.cn"}}}
	for _, t := range []struct {
		name string
		p    float64
	}{{"vip", 0.2}, {"high_value", 0.3}, {"churn_risk", 0.15}, {"new_customer", 0.1}} {
		if r.Float64() < t.p {
			p.Tags = append(p.Tags, portrait.ProfileTag{Name: t.name})
		}
	}
	var orders []benchOrder
	if r.Float64() < 0.4 {
		n := 1 + r.IntN(6)
		for j := 0; j < n; j++ {
			orders = append(orders, benchOrder{at: now.Add(-time.Duration(r.IntN(90*24)) * time.Hour), amount: float64(50 + r.IntN(1950))})
		}
		p.TrackCounts = map[string]int{"Order Completed": n}
	}
	return benchProfile{p: p, orders: orders}
}

func runBenchSegments(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench segments", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("profiles", 1_000_000, "number of generated profiles")
	pgURL := fs.String("postgres", "postgres://postgres@127.0.0.1:5432/test", "PostgreSQL URL for the SQL comparison (\"\" to skip)")
	asJSON := fs.Bool("json", false, "machine-readable output")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *n < 1 || *n > 50_000_000 {
		fmt.Fprintln(stderr, "--profiles must be between 1 and 50000000")
		return errUsage
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	plan, err := segment.CompileExpr(benchSegmentExpr)
	if err != nil {
		return err
	}

	// the index, with its memory measured as the heap it adds
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	ix := segment.NewIndex()
	for i := 0; i < *n; i++ {
		g := genBenchProfile(i, now)
		var s segment.Summary
		if len(g.orders) > 0 {
			s = segment.Summary{}
			for _, o := range g.orders {
				s.Add("Order Completed", o.at, o.amount)
			}
		}
		ix.Upsert(g.p, s)
	}
	buildMs := segMs(time.Since(start))
	runtime.GC()
	runtime.ReadMemStats(&after)
	indexBytes := int64(after.HeapAlloc) - int64(before.HeapAlloc)

	count := ix.Count(plan, now)
	countMs := median(7, func() { ix.Count(plan, now) })
	svc := segment.NewService(ix, nil)
	svc.Now = func() time.Time { return now }
	previewMs := median(7, func() {
		if _, _, _, err := svc.Preview(&segment.Definition{Name: "bench", Expression: benchSegmentExpr}, 20); err != nil {
			panic(err)
		}
	})
	// the console's group-by: every profile by province with revenue sums,
	// and the segment's members by city
	byProv, _ := segment.ParseDim("region")
	byCity, _ := segment.ParseDim("region:city")
	members := ix.Evaluate(plan, now)
	breakdownMs := median(7, func() {
		if _, err := ix.Breakdown(byProv, nil, "revenue", 10); err != nil {
			panic(err)
		}
	})
	breakdownSegMs := median(7, func() {
		if _, err := ix.Breakdown(byCity, members, "", 10); err != nil {
			panic(err)
		}
	})

	fmt.Fprintf(stderr, "index: %d profiles in %.0f ms, %d matching; loading SQLite...\n", *n, buildMs, count)
	sqliteMs, sqliteCount, err := benchSQLite(ctx, *n, now)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	var pgMs *float64
	pgCount := -1
	if *pgURL != "" {
		fmt.Fprintln(stderr, "loading PostgreSQL...")
		v, c, err := benchPostgres(ctx, *pgURL, *n, now)
		if err != nil {
			fmt.Fprintf(stderr, "postgres skipped: %v\n", err)
		} else {
			pgMs, pgCount = &v, c
		}
	}
	if sqliteCount != count || (pgCount >= 0 && pgCount != count) {
		return fmt.Errorf("the engines disagree: index %d, sqlite %d, postgres %d", count, sqliteCount, pgCount)
	}
	out := map[string]any{"profiles": *n, "count_ms": round3(countMs), "preview_ms": round3(previewMs), "breakdown_ms": round3(breakdownMs), "breakdown_segment_ms": round3(breakdownSegMs), "sqlite_ms": round3(sqliteMs),
		"postgres_ms": nil, "index_bytes": indexBytes, "index_bytes_estimate": ix.Bytes(), "build_ms": round3(buildMs), "matching": count,
		"segment": benchSegmentExpr}
	if pgMs != nil {
		out["postgres_ms"] = round3(*pgMs)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintf(stdout, "segment: %s\nprofiles: %d, matching: %d, index memory: %.1f MB (%.1f MB per million)\n\n",
		benchSegmentExpr, *n, count, float64(indexBytes)/1e6, float64(indexBytes)/1e6*1e6/float64(*n))
	fmt.Fprintf(stdout, "%-22s %12s %14s\n", "engine", "ms", "index speedup")
	fmt.Fprintf(stdout, "%-22s %12.3f %14s\n", "bitmap index count", countMs, "1.0x")
	fmt.Fprintf(stdout, "%-22s %12.3f %14s\n", "bitmap index preview", previewMs, "")
	fmt.Fprintf(stdout, "%-22s %12.3f %8.2fx count\n", "breakdown all×revenue", breakdownMs, breakdownMs/countMs)
	fmt.Fprintf(stdout, "%-22s %12.3f %8.2fx count\n", "breakdown in segment", breakdownSegMs, breakdownSegMs/countMs)
	fmt.Fprintf(stdout, "%-22s %12.3f %13.1fx\n", "SQLite", sqliteMs, sqliteMs/countMs)
	if pgMs != nil {
		fmt.Fprintf(stdout, "%-22s %12.3f %13.1fx\n", "PostgreSQL", *pgMs, *pgMs/countMs)
	} else {
		fmt.Fprintf(stdout, "%-22s %12s %14s\n", "PostgreSQL", "n/a", "")
	}
	return nil
}

func segMs(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// median runs fn k times and returns the median duration in ms: these
// machines are noisy, and one slow run says little.
func median(k int, fn func()) float64 {
	ds := make([]float64, k)
	for i := range ds {
		s := time.Now()
		fn()
		ds[i] = segMs(time.Since(s))
	}
	sort.Float64s(ds)
	return ds[k/2]
}

const benchSQL = `SELECT count(*) FROM profiles p
WHERE p.province = '广东省' AND p.age BETWEEN 25 AND 40
  AND EXISTS (SELECT 1 FROM profile_tags t WHERE t.tag = 'vip' AND t.profile_id = p.id)
  AND EXISTS (SELECT 1 FROM profile_tags t WHERE t.tag = 'high_value' AND t.profile_id = p.id)
  AND (SELECT count(*) FROM events e WHERE e.profile_id = p.id AND e.name = 'Order Completed' AND e.ts >= %s AND e.amount > 500) >= 2`

var benchDDL = []string{
	`CREATE TABLE profiles (id TEXT PRIMARY KEY, age INTEGER, province TEXT, city TEXT, gender TEXT, revenue REAL)`,
	`CREATE TABLE profile_tags (profile_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (profile_id, tag))`,
	`CREATE TABLE events (profile_id TEXT NOT NULL, name TEXT NOT NULL, ts BIGINT NOT NULL, amount REAL)`,
}

// Indexes a careful DBA would add for this workload; created after the load.
var benchIndexes = []string{
	`CREATE INDEX profiles_province_age ON profiles (province, age)`,
	`CREATE INDEX profile_tags_tag ON profile_tags (tag, profile_id)`,
	`CREATE INDEX events_profile ON events (profile_id, name, ts)`,
}

func benchSQLite(ctx context.Context, n int, now time.Time) (float64, int, error) {
	dir, err := os.MkdirTemp("", "portrait-bench-segments-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "bench.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=cache_size(-262144)")
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range benchDDL {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return 0, 0, err
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	ps, _ := tx.PrepareContext(ctx, `INSERT INTO profiles VALUES (?, ?, ?, ?, ?, ?)`)
	ts, _ := tx.PrepareContext(ctx, `INSERT INTO profile_tags VALUES (?, ?)`)
	es, err := tx.PrepareContext(ctx, `INSERT INTO events VALUES (?, ?, ?, ?)`)
	if err != nil {
		return 0, 0, err
	}
	for i := 0; i < n; i++ {
		g := genBenchProfile(i, now)
		t := g.p.Traits
		if _, err := ps.ExecContext(ctx, g.p.ID, int(t["age"].Value.(float64)), t["province"].Value, t["city"].Value, t["gender"].Value, t["revenue"].Value); err != nil {
			return 0, 0, err
		}
		for _, tg := range g.p.Tags {
			if _, err := ts.ExecContext(ctx, g.p.ID, tg.Name); err != nil {
				return 0, 0, err
			}
		}
		for _, o := range g.orders {
			if _, err := es.ExecContext(ctx, g.p.ID, "Order Completed", o.at.Unix(), o.amount); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, err
	}
	for _, q := range append(benchIndexes, "ANALYZE") {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return 0, 0, err
		}
	}
	q := fmt.Sprintf(benchSQL, strconv.FormatInt(now.Add(-30*24*time.Hour).Unix(), 10))
	var count int
	var qerr error
	d := median(3, func() {
		if err := db.QueryRowContext(ctx, q).Scan(&count); err != nil {
			qerr = err
		}
	})
	return d, count, qerr
}

func benchPostgres(ctx context.Context, url string, n int, now time.Time) (float64, int, error) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, url)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(context.Background())
	schema := fmt.Sprintf("portrait_bench_segments_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return 0, 0, err
	}
	defer conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	if _, err := conn.Exec(ctx, "SET search_path TO "+schema); err != nil {
		return 0, 0, err
	}
	for _, q := range benchDDL {
		if _, err := conn.Exec(ctx, q); err != nil {
			return 0, 0, err
		}
	}
	var profs, tags, evs [][]any
	flush := func() error {
		for _, c := range []struct {
			table string
			cols  []string
			rows  *[][]any
		}{
			{"profiles", []string{"id", "age", "province", "city", "gender", "revenue"}, &profs},
			{"profile_tags", []string{"profile_id", "tag"}, &tags},
			{"events", []string{"profile_id", "name", "ts", "amount"}, &evs},
		} {
			if _, err := conn.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(*c.rows)); err != nil {
				return err
			}
			*c.rows = (*c.rows)[:0]
		}
		return nil
	}
	for i := 0; i < n; i++ {
		g := genBenchProfile(i, now)
		t := g.p.Traits
		profs = append(profs, []any{g.p.ID, int32(t["age"].Value.(float64)), t["province"].Value, t["city"].Value, t["gender"].Value, t["revenue"].Value})
		for _, tg := range g.p.Tags {
			tags = append(tags, []any{g.p.ID, tg.Name})
		}
		for _, o := range g.orders {
			evs = append(evs, []any{g.p.ID, "Order Completed", o.at.Unix(), o.amount})
		}
		if len(profs) == 50000 {
			if err := flush(); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, 0, err
	}
	for _, q := range append(benchIndexes, "ANALYZE") {
		if _, err := conn.Exec(ctx, q); err != nil {
			return 0, 0, err
		}
	}
	q := fmt.Sprintf(benchSQL, strconv.FormatInt(now.Add(-30*24*time.Hour).Unix(), 10))
	var count int
	var qerr error
	d := median(3, func() {
		if err := conn.QueryRow(ctx, q).Scan(&count); err != nil {
			qerr = err
		}
	})
	return d, count, qerr
}
