package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/jobs"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/erasure"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/internal/storeseal"
	"github.com/portrait-cdp/portrait/linkage"
	natsbus "github.com/portrait-cdp/portrait/nats"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
)

// Config is what serve and demo share.
type Config struct {
	Addr      string
	DataDir   string
	Store     string
	Bus       string
	RulesFile string
	CleanFile string
	MapFile   string // customer business map: service path, needs, rules
	// AnalyticsEvery: how often each analysis reruns (0: never on its own).
	AnalyticsEvery time.Duration
	LogLevel       string
	JSON           bool
	// Scheduled segment deliveries (issue 14 §5, deliveries.go): the file
	// drop directory and the NATS server subjects are published on.
	DeliveryDir  string
	DeliveryNATS string
	// Hardening (privacy-erasure): see cmd/portrait/erasure.go.
	Hardening Hardening
	// Several nodes (issue 17): see cmd/portrait/nodes.go.
	nodeConfig
	// DataKeyFile holds the keys sealing secret-level values at rest
	// (sealing: cmd/portrait/sealing.go); else PORTRAIT_DATA_KEY.
	DataKeyFile string
}

func (c *Config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&c.DataDir, "data", "./portrait-data", "data directory of the embedded store")
	fs.StringVar(&c.Store, "store", "", "store: sqlite:DIR or postgres://user@host:port/db (default: embedded SQLite under --data)")
	fs.StringVar(&c.Bus, "bus", "", "event bus: nats://host:port (default: in-process, the tracking API appends to the store)")
	fs.StringVar(&c.BusStream, "bus-stream", "portrait", "the bus's stream name (every node of a deployment uses the same)")
	fs.IntVar(&c.BusPartitions, "bus-partitions", natsbus.DefaultPartitions, "partitions of the bus's stream; fixed when the stream is created")
	fs.DurationVar(&c.BusAckWait, "bus-ack-wait", 30*time.Second, "how long a consumed batch may stay unacknowledged before the bus delivers it again")
	fs.IntVar(&c.BusBatch, "bus-batch", 0, "the most events a partition's consumer takes at once: what is buffered, up to this, so batches grow under backlog and stay small when idle (default: 2000 under --apply partitioned, else 500)")
	fs.StringVar(&c.Role, "role", "all", "what this node does: all, or ingest, process, api, comma-separated (several need --store postgres://… and --bus)")
	fs.StringVar(&c.Node, "node", "", "this node's name among the others (default: host name and process id)")
	fs.DurationVar(&c.ChangeFeedRetention, "change-feed-retention", time.Hour, "how long a shared store's change feed keeps a change (pruned by the nodes that commit state): an api node away longer reloads every profile")
	fs.StringVar(&c.Apply, "apply", applyLeased, "how process nodes apply events to profiles: leased (one node at a time, under the applier lease) or partitioned (each node the bus partitions it consumes; PostgreSQL and a bus; the same on every node)")
	fs.IntVar(&c.ApplyConcurrency, "apply-concurrency", 0, "under --apply partitioned, how many of its partitions a node applies at once (default: twice the CPUs, at least 4)")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", 10*time.Second, "lease time of partitions and of the applier: a node that dies is replaced within about this long (the same on every node)")
	fs.StringVar(&c.RulesFile, "rules", "", "identity rules YAML (priority, limits, blocked, trait_identifiers)")
	fs.DurationVar(&c.AnalyticsEvery, "analytics-every", 24*time.Hour, "rerun every analysis (clv, fpgrowth, kmeans, churn) this often; 0 turns the schedule off")
	fs.StringVar(&c.CleanFile, "clean", "", "cleaning YAML: region, kinds (trait → email|phone|name|...), fill rules")
	fs.StringVar(&c.MapFile, "map", "", "customer business map YAML: journey (stages), needs (taxonomy, topics), rules")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&c.JSON, "json", false, "machine-readable output")
	fs.StringVar(&c.DeliveryDir, "delivery-dir", "", "file drop directory of scheduled segment deliveries (default: deliveries/ under --data)")
	fs.StringVar(&c.DeliveryNATS, "delivery-nats", "", "NATS URL that segment deliveries may publish to (default: none)")
	c.Hardening.flags(fs) // privacy-erasure
	// sealing: cmd/portrait/sealing.go
	fs.StringVar(&c.DataKeyFile, "data-key-file", "", "file of data keys sealing secret-level values at rest (default: $PORTRAIT_DATA_KEY; none: stored in clear)")
}

// App is a running Portrait: store, processor and HTTP server, wired here
// and nowhere else.
type App struct {
	Config Config
	Log    *slog.Logger
	DB     Store
	Rules  *identity.Rules
	Proc   *profile.Processor
	HTTP   *porthttp.Server
	Enrich *Enrichment
	Jobs   *jobs.Runner
	// now is the store's clock (the embedded store's Now, which tests
	// move), for services that stamp what they record.
	now  portrait.Clock
	lock *os.File

	// Several nodes (nodes.go).
	roles  roles
	reseal *storeseal.Worker // seals the values of a level raised to secret (sealing.go)
	shared bool              // the store is shared with other nodes
	bus    *natsbus.Bus      // nil: no bus, the tracking API appends to the store
	terms  partitionTerms
	// boundaries is the version of the computed traits (and RFM
	// boundaries) the partition processors last read (followBoundaries).
	boundaries struct {
		mu      sync.Mutex
		version int64
		seen    bool
	}
	procStore *applierStore
	follow    *follower    // api on a shared store: indexes follow the change feed
	defs      *defFollower // a shared store: definitions changed by other nodes (definitions.go)
	// rewrites queues rewrites for the applier (rewrites.go); eraseHere
	// is the erasure service behind applierErasure, for the applier.
	rewrites  rewriteQueue
	eraseHere porthttp.ErasureService
	// erasure is the erasure service itself, for the parts wired after it
	// (the accounts, a model derived from the log it must rebuild).
	erasure *erasure.Service
	// scratchClosing, for tests, sees an event retention pass's scratch
	// store's files after it closed and before they are removed.
	scratchClosing func(dir string)
	// suppressor drops erased people's events at ingest (wireErasure).
	suppressor *erasure.Suppressor
	applying   atomic.Bool
	// jobsTerm is this node's term of the jobs lease held in the store
	// (0: not held; fenceJobs).
	jobsTerm atomic.Uint64
	// jobsFence names what jobsTerm is counted in (claimJobsTerm).
	jobsFence atomic.Pointer[string]
	// deliveryCheck, for tests, replaces the minute between two checks
	// for due deliveries.
	deliveryCheck time.Duration
	// retention deletes expired quarantined records (privacy-erasure)
	retention *erasure.Retention
	// eventRetention expires events by age, on the applier (retention.go)
	eventRetention *erasure.EventRetention

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// lockDir takes the data directory for this process: two processes writing
// the same derived state would each believe it is the only writer.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, portrait.Wrap(err, "cannot create the data directory")
	}
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot open the lock file")
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, portrait.Errorf(portrait.ECONFLICT, "the data directory %s is in use by another portrait process", dir)
	}
	return f, nil
}

// lockIdle takes the data directory for a command that must not run beside
// a server, and when a server holds it says what to do instead (advice).
func lockIdle(dir, advice string) (*os.File, error) {
	f, err := lockDir(dir)
	if portrait.ErrorCode(err) == portrait.ECONFLICT {
		return nil, portrait.Errorf(portrait.ECONFLICT, "the data directory %s is in use by a running portrait server; %s", dir, advice)
	}
	return f, err
}

func loadRules(path string) (*identity.Rules, error) {
	r := identity.DefaultRules()
	if path == "" {
		return r, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "cannot read rules file: %v", err)
	}
	if err := yaml.Unmarshal(b, r); err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "rules file %s: %v", path, err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r.Compile(), nil
}

// cleaningConfig is the --clean file: how traits are standardized and which
// missing values are filled.
type cleaningConfig struct {
	Region string            `yaml:"region"`
	Kinds  map[string]string `yaml:"kinds"` // added to the defaults
	Fill   []clean.FillRule  `yaml:"fill"`
}

// configureCleaning sets the processor's standardizer and enrichers: traits
// are cleaned before they are set, Chinese names get their pinyin, and the
// declared fill rules impute what is missing.
func configureCleaning(p *profile.Processor, path string) error {
	std := clean.DefaultTraitStandardizer()
	var cc cleaningConfig
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return portrait.Errorf(portrait.EINVALID, "cannot read cleaning file: %v", err)
		}
		if err := yaml.Unmarshal(b, &cc); err != nil {
			return portrait.Errorf(portrait.EINVALID, "cleaning file %s: %v", path, err)
		}
	}
	if cc.Region != "" {
		std.Region = cc.Region
	}
	for k, v := range cc.Kinds {
		std.Kinds[k] = v
	}
	if err := std.Validate(); err != nil {
		return err
	}
	p.Standardize = std.Standardize
	p.Enrichers = append(p.Enrichers, clean.PinyinEnricher{})
	if len(cc.Fill) > 0 {
		f, err := clean.NewTraitFiller(cc.Fill)
		if err != nil {
			return err
		}
		p.Enrichers = append(p.Enrichers, f)
	}
	return nil
}

// OpenApp opens the store (and the bus) and wires the processor and the
// HTTP server; Start runs what the node's roles run.
func OpenApp(ctx context.Context, cfg Config, logOut io.Writer) (_ *App, err error) {
	kind, where, err := parseStore(cfg.Store, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	rs, err := parseRoles(cfg.Role)
	if err != nil {
		return nil, err
	}
	if cfg.Node == "" {
		cfg.Node = defaultNodeName()
	}
	if cfg.BusStream == "" {
		cfg.BusStream = "portrait"
	}
	if kind == storeSQLite {
		cfg.DataDir = where
	}
	a := &App{Config: cfg, roles: rs, Log: nodeLogger(newLogger(cfg.LogLevel, logOut), cfg.Node, rs)}
	rules, err := loadRules(cfg.RulesFile)
	if err != nil {
		return nil, err
	}
	rules.Normalize = clean.Identifier
	a.Rules = rules
	defer func() {
		if err != nil {
			a.closeStores()
		}
	}()
	switch kind {
	case storeSQLite:
		if a.lock, err = lockDir(cfg.DataDir); err != nil {
			return nil, err
		}
		db, err := sqlite.Open(ctx, cfg.DataDir)
		if err != nil {
			return nil, err
		}
		a.DB, a.now = db, func() time.Time { return db.Now() }
		a.reportRecoveries()
	case storePostgres:
		if openPostgres == nil {
			return nil, noPostgres(where)
		}
		if a.DB, err = openPostgres(ctx, where, storeOptions{ChangesKept: cfg.ChangeFeedRetention, Log: a.Log}); err != nil {
			return nil, err
		}
		a.now, a.shared = time.Now, true
	}
	if err := a.openBus(ctx); err != nil {
		return nil, err
	}
	if err := a.checkApply(); err != nil {
		return nil, err
	}
	if err := a.checkRoles(); err != nil {
		return nil, err
	}
	if a.shared && rs.api {
		feed, ok := a.DB.(changeFeed)
		if !ok {
			return nil, portrait.Errorf(portrait.EINVALID, "the store %s has no change feed for an api node to follow", redactURL(where))
		}
		a.follow = &follower{Feed: feed, Profiles: a.DB, Notify: a.DB.Appended, Log: a.Log}
		// Before the indexes are built: a change during the build is
		// read again after it.
		if err := a.follow.Skim(ctx); err != nil {
			return nil, err
		}
	}
	if err := a.openSealing(); err != nil { // sealing
		return nil, err
	}
	// Before any definition is loaded: a change made meanwhile by another
	// node is read again (definitions.go).
	if err := a.openDefinitions(ctx); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	processed := prometheus.NewCounter(prometheus.CounterOpts{Name: "portrait_events_processed_total", Help: "Events applied to profiles."})
	reg.MustRegister(processed)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portrait_node_applying", Help: "1 while this node applies events to profiles (the one applier among process nodes)."},
		func() float64 {
			if a.applying.Load() {
				return 1
			}
			return 0
		}))

	a.procStore = &applierStore{Store: a.DB}
	a.Proc = profile.NewProcessor(a.procStore, rules)
	a.Proc.Partitioned = a.partitioned()
	a.Proc.Log = a.Log
	if err := configureCleaning(a.Proc, cfg.CleanFile); err != nil {
		return nil, err
	}
	a.Proc.Notify = a.DB.Appended
	a.Proc.OnBatch = func(n int, _ int64, _ time.Time) { processed.Add(float64(n)) }

	s := porthttp.NewServer()
	s.Addr = cfg.Addr
	s.Log = a.Log
	s.Registry = reg
	s.Filter = roleFilter(rs)
	if a.storeReadOnly() {
		s.Filter = readOnlyFilter(cfg.Node, s.Filter)
	}
	s.Events, s.Quarantine, s.Keys, s.Profiles = a.ingestLog(), a.DB, a.DB, a.DB
	s.Parser.Blocked = rules.IsBlocked
	s.NormalizeID = rules.Normalize
	s.Ready = func(ctx context.Context) error {
		_, err := a.DB.LastSeq(ctx)
		return err
	}
	s.Lag = a.lag
	s.Applied = a.applied
	s.Incapable, s.Recoveries = a.incapable, a.DB.Recoveries
	// Uploads share the tracking API's parser, so imports validate exactly
	// as tracked events do.
	s.Importer = &importer.Importer{Log: a.ingestLog(), Runs: a.DB, Parser: s.Parser}
	s.ImportRuns, s.QualityStore = a.DB, a.DB
	s.Linkage = &linkage.Service{Profiles: a.DB, Store: a.DB, Log: a.DB, Now: time.Now, Journal: a.DB}
	a.Jobs = jobs.NewRunner(a.DB, a.DB, a.DB)
	a.Jobs.Fence = a.fenceJobs // scheduled runs only; one asked through the API is not fenced
	a.Jobs.Logf = a.Log
	s.Analytics = a.Jobs
	a.HTTP = s
	// privacy and access (issue 15): audit log, classification levels
	if err := wireAccess(ctx, s, a.DB); err != nil {
		return nil, err
	}
	if st, ok := s.Classifications.(porthttp.SealingStatus); ok {
		s.Sealing = st // the wrapper below hides it
	}
	if dk, ok := a.DB.(porthttp.DataKeyStatus); ok {
		s.DataKeys = dk // GET /v1/keys/data-key
	}
	s.Classifications = notifyingClassifications{s.Classifications, a}
	if err := a.wireEnrichment(ctx); err != nil {
		return nil, err
	}
	a.wireSealingLevels() // sealing
	// The in-memory indexes (search, segments) read every profile: only
	// a node that serves them builds them.
	if rs.api {
		if err := a.wireConsoleAPI(ctx); err != nil {
			return nil, err
		}
		if err := a.wireSegments(ctx); err != nil {
			return nil, err
		}
	}
	if err := a.wireMap(); err != nil { // customer business map (issue 14)
		return nil, err
	}
	if err := a.wireErasure(ctx); err != nil { // privacy-erasure
		return nil, err
	}
	a.wireAccounts() // accounts (issue 16): cmd/portrait/accounts.go
	a.wireDefinitionReloads()
	if a.follow != nil {
		// The hooks follow the store, whichever node applies.
		a.follow.OnChange, a.Proc.OnChange = a.Proc.OnChange, nil
	}
	return a, nil
}

// closeStores closes the bus and the store and lets the data directory go.
func (a *App) closeStores() error {
	var err error
	if a.HTTP != nil && a.HTTP.Deliveries != nil {
		if pub, ok := a.HTTP.Deliveries.NATS.(*natsbus.Publisher); ok {
			pub.Close()
			a.HTTP.Deliveries.NATS = nil
		}
	}
	if a.bus != nil {
		a.bus.Close()
		a.bus = nil
	}
	if a.DB != nil {
		err = a.DB.Close()
		a.DB = nil
	}
	if a.lock != nil {
		a.lock.Close()
		a.lock = nil
	}
	return err
}

// FreshProcessor returns a processor configured like the app's (rules,
// cleaning, enrichers) with empty caches: for rebuilds and benchmarks.
func (a *App) FreshProcessor() *profile.Processor {
	p := profile.NewProcessor(a.DB, a.Rules)
	p.Log = a.Log
	p.Standardize, p.Enrichers, p.OnceTraits, p.SourcePriority = a.Proc.Standardize, a.Proc.Enrichers, a.Proc.OnceTraits, a.Proc.SourcePriority
	return p
}

// lag is how far the processor is behind: in events (in the log and not
// applied, or still on the bus), and in seconds since the oldest unapplied
// event of the log was received.
// applied reports whether the event with this message id is in the log
// and the processor's committed position has passed it, so that reads see
// what it did (an undo from the console answers only then).
func (a *App) applied(ctx context.Context, messageID string) (bool, error) {
	ev, err := a.DB.EventByMessageID(ctx, messageID)
	if err != nil || ev == nil {
		return false, err // not in the log yet (on the bus)
	}
	cp, err := a.checkpoint(ctx)
	if err != nil {
		return false, err
	}
	return cp >= ev.Seq, nil
}

// A position that cannot be read is an error, not a lag of 0: a store too
// loaded to answer within the 2 s must not look caught up.
func (a *App) lag() (int64, float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	last, err := a.DB.LastSeq(ctx)
	if err != nil {
		return 0, 0, portrait.Wrap(err, "cannot read the log's end")
	}
	cp, err := a.checkpoint(ctx)
	if err != nil {
		return 0, 0, err
	}
	// Events the bus holds and no store has yet count too: acknowledged,
	// not yet in any profile.
	pending, err := a.busPending(ctx)
	if err != nil {
		return 0, 0, err
	}
	if last <= cp {
		return pending, 0, nil
	}
	at, err := a.DB.ReceivedAt(ctx, cp+1)
	if err != nil {
		return 0, 0, portrait.Wrap(err, "cannot read when the oldest unapplied event was received")
	}
	if at.IsZero() { // erased, or pruned: the count stands
		return last - cp + pending, 0, nil
	}
	return last - cp + pending, time.Since(at).Seconds(), nil
}

// Bootstrap creates the credentials: from PORTRAIT_ADMIN_TOKEN and
// PORTRAIT_WRITE_KEY when set, otherwise, on first start, generated and
// printed once when out is a terminal (never into a log). It returns the
// secrets it knows (env or generated).
func (a *App) Bootstrap(ctx context.Context, getenv func(string) string, out io.Writer) (admin, write string, err error) {
	keys, err := a.DB.ListKeys(ctx)
	if err != nil {
		return "", "", err
	}
	has := map[string]bool{}
	for _, k := range keys {
		has[k.Kind] = true
	}
	for _, c := range []struct {
		kind, env, name, prefix string
		secret                  *string
	}{
		{portrait.KeyAdmin, "PORTRAIT_ADMIN_TOKEN", "admin", "pat_", &admin},
		{portrait.KeyWrite, "PORTRAIT_WRITE_KEY", "default", "pwk_", &write},
	} {
		if v := strings.TrimSpace(getenv(c.env)); v != "" {
			if err := a.DB.CreateKey(ctx, &portrait.Key{Kind: c.kind, Name: c.name}, v); err != nil {
				return "", "", fmt.Errorf("%s: %w", c.env, err)
			}
			*c.secret = v
			continue
		}
		if has[c.kind] {
			continue
		}
		v := newSecret(c.prefix)
		if err := a.DB.CreateKey(ctx, &portrait.Key{Kind: c.kind, Name: c.name}, v); err != nil {
			return "", "", err
		}
		*c.secret = v
		if !isTerminal(out) {
			// A service manager's log or a redirected file keeps what is
			// printed, readable by whoever reads the logs: the secret is
			// shown only on an interactive terminal (issue 15).
			fmt.Fprintf(out, "created %s key %q; its secret is not printed because the output is not a terminal: set %s to choose your own, or make another with \"portrait keys create --kind %s\" on a terminal\n", c.kind, c.name, c.env, c.kind)
			continue
		}
		fmt.Fprintf(out, "created %s key %q: %s\n  (shown once; set %s to choose your own)\n", c.kind, c.name, v, c.env)
	}
	return admin, write, nil
}

// isTerminal reports whether w is an interactive terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newSecret(prefix string) string {
	b := make([]byte, 20)
	rand.Read(b)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// Start runs what the node's roles run (nodes.go) and the HTTP server.
func (a *App) Start(ctx context.Context) error {
	ctx, a.cancel = context.WithCancel(ctx)
	a.startNodes(ctx)
	return a.HTTP.Open()
}

// Close stops serving, lets the processor finish its batch, and closes the
// bus and the store (which drains queued appends).
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if a.HTTP != nil {
		a.HTTP.Close(ctx)
	}
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	if a.Jobs != nil {
		a.Jobs.Wait()
	}
	return a.closeStores()
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, demo bool) error {
	name := "serve"
	if demo {
		name = "demo"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	cfg.flags(fs)
	var d demoFlags
	if demo {
		d.flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	a, err := OpenApp(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	admin, _, err := a.Bootstrap(ctx, os.Getenv, stdout)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	a.Log.Info("portrait serving", "url", a.HTTP.URL(), "data", cfg.DataDir, "role", a.roles.String(), "version", portrait.Version)
	if demo {
		keys, err := ensureDemoKeys(ctx, a, admin, strings.TrimSpace(os.Getenv("PORTRAIT_ADMIN_TOKEN")) != "")
		if err != nil {
			return err
		}
		stop, err := startCPUProfile(d.cpuProfile)
		if err != nil {
			return err
		}
		sum, err := d.run(ctx, a, keys, stderr)
		stop()
		if err != nil {
			return err
		}
		consoleLink(ctx, a, admin, sum, stdout, !cfg.JSON)
		if cfg.JSON {
			json.NewEncoder(stdout).Encode(sum)
		} else {
			fmt.Fprintf(stdout, "demo: %d customers (%d also buying offline, to be merged by phone), %d events sent (%d accepted, %d already in the log), %d profiles\n",
				sum.Customers, sum.Duplicates, sum.Events, sum.Accepted, sum.Duplicated, sum.Profiles)
			printDemoReady(stdout, a.HTTP.URL(), keys.Admin, sum.SampleEmail, filepath.Join(cfg.DataDir, demoKeysFile))
		}
	}
	<-ctx.Done()
	a.Log.Info("shutting down")
	return nil
}

func runVersion(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	j := fs.Bool("json", false, "machine-readable output")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *j {
		return json.NewEncoder(stdout).Encode(map[string]string{"version": portrait.Version})
	}
	fmt.Fprintln(stdout, "portrait", portrait.Version)
	return nil
}
