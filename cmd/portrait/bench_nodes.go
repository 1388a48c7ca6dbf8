package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/portrait-cdp/portrait"
	natsbus "github.com/portrait-cdp/portrait/nats"
)

// nodesResult is one setup of "portrait bench nodes".
type nodesResult struct {
	Setup           string  `json:"setup"`
	Nodes           int     `json:"process_nodes"`
	Events          int     `json:"events"`
	AckedPerSec     float64 `json:"acked_events_per_sec"`
	ProcessedPerSec float64 `json:"processed_events_per_sec"`
	// CPUSec is the CPU time of this process (every node, the load
	// generator, not NATS or PostgreSQL) from the first request until
	// processing caught up: on a shared machine it moves less than rates.
	CPUSec float64 `json:"cpu_seconds"`
	// LeasesLost counts the partition and named leases the nodes lost
	// (not gave back) during the setup: flaps under load.
	LeasesLost int64 `json:"leases_lost"`
}

// runBenchNodes measures acknowledged and processed events per second with
// N process nodes over a store and a bus, beside the embedded single node
// measured in the same run with the same events (issue 17 "Prove it"). The
// nodes run in this process, each with its own store and bus connections
// and its own HTTP server on loopback; the load goes to them in turn.
// With the embedded store there is one node (its data directory is
// locked), with or without the bus.
func runBenchNodes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench nodes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := fs.String("store", "", "shared store URL (postgres://…); default: the embedded store, one node")
	bus := fs.String("bus", "nats://127.0.0.1:4222", "NATS URL")
	nodeList := fs.String("nodes", "1,2", "process node counts to measure, comma-separated (more than 1 needs --store)")
	partitions := fs.Int("bus-partitions", natsbus.DefaultPartitions, "partitions of each run's stream")
	busBatch := fs.Int("bus-batch", 0, "the most events a partition's consumer takes at once (default: serve's)")
	applyConc := fs.Int("apply-concurrency", 0, "partitions a partitioned node applies at once (default: serve's)")
	n := fs.Int("events", 50_000, "events to send per setup")
	batch := fs.Int("batch", 100, "events per HTTP request")
	conc := fs.Int("concurrency", 8, "concurrent HTTP clients")
	users := fs.Int("users", 5_000, "distinct customers in the generated stream")
	asJSON := fs.Bool("json", false, "machine-readable output")
	trace := fs.Bool("trace", false, "print, every second of each setup, the events waiting on the bus, the log's end, the applied checkpoint and the applier's batches (to stderr)")
	withEmbedded := fs.Bool("embedded", true, "measure the embedded single node too (the baseline)")
	logLevel := fs.String("log-level", "error", "the nodes' log level (debug, info, warn or error), to stderr")
	applyList := fs.String("apply", applyLeased, "how the process nodes over --store apply: leased, partitioned, or both comma-separated (each node count is measured in each mode, alternating)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the last setup (from the first request until caught up) to this file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *n < *batch || *batch < 1 || *conc < 1 {
		return portrait.Errorf(portrait.EINVALID, "need events >= batch >= 1 and concurrency >= 1")
	}
	var counts []int
	for _, s := range strings.Split(*nodeList, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return portrait.Errorf(portrait.EINVALID, "--nodes %q: counts of 1 or more", *nodeList)
		}
		if k > 1 && *store == "" {
			return portrait.Errorf(portrait.EINVALID, "--nodes %d needs a shared store (--store postgres://…): the embedded store serves one node", k)
		}
		counts = append(counts, k)
	}
	dir, err := os.MkdirTemp("", "portrait-bench-nodes-")
	if err != nil {
		return portrait.Wrap(err, "cannot create a temporary directory")
	}
	defer os.RemoveAll(dir)
	bodies, _ := benchBodies(*n, *batch, *users)
	tag := make([]byte, 4)
	rand.Read(tag)
	runID := hex.EncodeToString(tag)

	run := func(k int, setup string, cfgs []Config) (nodesResult, error) {
		res := nodesResult{Setup: setup, Nodes: len(cfgs), Events: *n}
		var apps []*App
		defer func() {
			for _, a := range apps {
				a.Close()
			}
		}()
		for _, c := range cfgs {
			a, err := OpenApp(ctx, c, stderr)
			if err != nil {
				return res, err
			}
			apps = append(apps, a)
		}
		// The applier's batches (whichever node applies), for --trace;
		// hooked before the nodes start.
		var batches, batchEvents atomic.Int64
		for _, a := range apps {
			prev := a.Proc.OnBatch
			a.Proc.OnBatch = func(n int, seq int64, ts time.Time) {
				if prev != nil {
					prev(n, seq, ts)
				}
				batches.Add(1)
				batchEvents.Add(int64(n))
			}
		}
		// Each setup's events are new to the store (a shared store keeps
		// earlier runs' logs), and so is its key.
		prefix := []byte(`"messageId":"bench-` + runID + "-" + strconv.Itoa(k) + "-")
		key := "bench-" + runID + "-" + strconv.Itoa(k)
		if err := apps[0].DB.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyWrite, Name: key}, key); err != nil {
			return res, err
		}
		var urls []string
		for _, a := range apps {
			if err := a.Start(ctx); err != nil {
				return res, err
			}
			urls = append(urls, a.HTTP.URL()+"/v1/batch")
		}
		if *cpuProfile != "" && k == len(counts) {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return res, portrait.Wrap(err, "cannot write the CPU profile")
			}
			defer f.Close()
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
		cpu0 := cpuSeconds()
		start := time.Now()
		lastTrace := start
		traceLine := func() {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			last, _ := apps[0].DB.LastSeq(ctx)
			var unacked, again int
			if b := apps[0].bus; b != nil {
				unacked, again, _ = b.ConsumerStats(ctx)
			}
			pending, _ := apps[0].busPending(ctx)
			applied, _ := apps[0].checkpoint(ctx)
			fmt.Fprintf(stderr, "%s %5.1fs: bus pending %d (delivered, unacknowledged %d; redelivered %d), log end %d, applied %d, applier batches %d (%d events), CPU %.1fs\n",
				setup, time.Since(start).Seconds(), pending, unacked, again, last, applied, batches.Load(), batchEvents.Load(), cpuSeconds()-cpu0)
		}
		if err := sendRoundRobin(ctx, urls, key, bodies, []byte(`"messageId":"bench-`), prefix, *conc); err != nil {
			return res, err
		}
		acked := time.Since(start)
		// Caught up: nothing on the bus, the log applied (lag counts both).
		deadline := time.Now().Add(30 * time.Minute)
		for {
			// A lag that could not be read is not caught up.
			if lag, _, err := apps[0].lag(); err == nil && lag == 0 {
				break
			}
			if *trace && time.Since(lastTrace) >= time.Second {
				lastTrace = time.Now()
				traceLine()
			}
			if time.Now().After(deadline) {
				return res, portrait.Errorf(portrait.EINTERNAL, "%s: processing did not catch up within 30 minutes", setup)
			}
			time.Sleep(20 * time.Millisecond)
		}
		processed := time.Since(start)
		res.CPUSec = cpuSeconds() - cpu0
		for _, a := range apps {
			if a.bus != nil {
				res.LeasesLost += a.bus.LeasesLost()
			}
		}
		if *trace {
			traceLine()
		}
		res.AckedPerSec = float64(*n) / acked.Seconds()
		res.ProcessedPerSec = float64(*n) / processed.Seconds()
		return res, nil
	}
	stream := func(k int) (string, func()) {
		name := "portrait_bench_" + runID + "_" + strconv.Itoa(k)
		return name, func() {
			b, err := natsbus.Open(context.Background(), natsbus.Config{URL: *bus, Stream: name, Partitions: *partitions})
			if err != nil {
				return
			}
			b.Delete(context.Background())
			b.Close()
		}
	}

	base := Config{Addr: "127.0.0.1:0", LogLevel: *logLevel}
	base.AnalyticsEvery = 0
	var results []nodesResult
	// The embedded single node, as today.
	if *withEmbedded {
		emb := base
		emb.DataDir = filepath.Join(dir, "embedded")
		r, err := run(0, "embedded (SQLite, no bus)", []Config{emb})
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	modes := strings.Split(*applyList, ",")
	for _, m := range modes {
		if m != applyLeased && m != applyPartitioned {
			return portrait.Errorf(portrait.EINVALID, "--apply %q: leased, partitioned, or both comma-separated", *applyList)
		}
		if m == applyPartitioned && *store == "" {
			return portrait.Errorf(portrait.EINVALID, "--apply partitioned needs --store postgres://…")
		}
	}
	type setupRun struct {
		k    int
		mode string
	}
	var runs []setupRun
	for _, k := range counts {
		for _, m := range modes {
			runs = append(runs, setupRun{k, m})
		}
	}
	for i, sr := range runs {
		k := sr.k
		name, drop := stream(i + 1)
		var cfgs []Config
		setup := "SQLite + NATS"
		for j := range k {
			c := base
			c.Bus, c.BusStream, c.BusPartitions, c.LeaseTTL = *bus, name, *partitions, 3*time.Second
			c.BusBatch, c.ApplyConcurrency = *busBatch, *applyConc
			c.Node = fmt.Sprintf("bench%d", j)
			if *store == "" {
				c.DataDir = filepath.Join(dir, "bus-"+strconv.Itoa(i))
			} else {
				setup = "PostgreSQL + NATS, " + sr.mode
				c.Store, c.Role, c.DataDir, c.Apply = *store, "ingest,process", filepath.Join(dir, "node-"+strconv.Itoa(j)), sr.mode
			}
			cfgs = append(cfgs, c)
		}
		r, err := run(i+1, setup, cfgs)
		drop()
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(results)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "setup\tprocess nodes\tevents\tacknowledged ev/s\tprocessed ev/s\tCPU s\tleases lost\t\n")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.1f\t%d\t\n", r.Setup, r.Nodes, r.Events, r.AckedPerSec, r.ProcessedPerSec, r.CPUSec, r.LeasesLost)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "same %d events (batches of %d, %d clients) for every setup, in this run; processed = until the last event was applied\n", *n, *batch, *conc)
	return nil
}

// sendRoundRobin posts every body, each to the next URL in turn, with the
// message id prefix old replaced by new; any answer but 200 is an error.
func sendRoundRobin(ctx context.Context, urls []string, key string, bodies [][]byte, old, new []byte, conc int) error {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for firstErr.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, urls[i%len(urls)], bytes.NewReader(bytes.ReplaceAll(bodies[i], old, new)))
				req.SetBasicAuth(key, "")
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("HTTP %d", resp.StatusCode)
					}
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return portrait.Errorf(portrait.EINTERNAL, "a batch was not acknowledged: %v", err)
	}
	return nil
}
