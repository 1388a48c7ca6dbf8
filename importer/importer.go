package importer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/tracking"
)

// Appender is the part of the event log an import writes to.
type Appender interface {
	Append(ctx context.Context, events []*portrait.Event, rejected []*portrait.Rejected) (portrait.AppendResult, error)
}

// RunStore keeps import summaries (JSON of Summary) so that a finished
// import can still be looked up and the quality report can count it.
type RunStore interface {
	SaveImport(ctx context.Context, id, source, state string, summary []byte) error
}

// Importer imports files. Log and Parser are required.
type Importer struct {
	Log    Appender
	Runs   RunStore // optional
	Parser *tracking.Parser
	Now    portrait.Clock
	// BatchSize is the number of rows per append (default 2000): large
	// enough that commits are few, small enough that a batch's events are
	// a small share of the log's group commit.
	BatchSize int
	// Limits bound what one file may cost (zero fields: DefaultLimits).
	Limits Limits
}

// Input is a file to import. Open is called twice (a checking pass, then
// the import), so it must return the same bytes each time.
type Input struct {
	Name string // file name, for messages and provenance
	Size int64  // bytes, for progress; 0 if unknown
	Open func() (io.ReadCloser, error)
}

// Options of one import.
type Options struct {
	ID      string // import id; default derived from source and file hash
	Source  string
	Format  string
	Mapping *Mapping
	// Progress, if set, is called from the import's goroutine after each
	// batch.
	Progress func(Progress)
}

// Progress of a running import.
type Progress struct {
	Phase     string // "checking" or "importing"
	Rows      int64  // rows done in this phase
	TotalRows int64  // known after the checking pass
	Bytes     int64  // bytes read of the file in this phase
	TotalSize int64
	// Outcome so far (importing phase).
	Accepted, Duplicates, Quarantined int64
	// Suppressed rows carried an erased person's identifier: dropped.
	Suppressed int64
	Reasons    map[string]int64 // a copy
}

// Counts of what happened to a set of events.
type Counts struct {
	Events      int64            `json:"events"`
	Accepted    int64            `json:"accepted"`
	Duplicates  int64            `json:"duplicates"`
	Quarantined int64            `json:"quarantined"`
	Suppressed  int64            `json:"suppressed,omitempty"`
	Reasons     map[string]int64 `json:"reasons,omitempty"`
}

// FieldStats counts one mapped field over the rows of an import.
type FieldStats struct {
	Present int64 `json:"present"` // rows with a value
	Valid   int64 `json:"valid"`
	Invalid int64 `json:"invalid"` // left unset, with a reason
	Imputed int64 `json:"imputed"` // filled by a fill rule
}

// Summary is the result of an import; Rows = Accepted + Duplicates +
// Quarantined + Suppressed always holds for a finished import.
type Summary struct {
	ID          string `json:"id"`
	Source      string `json:"source"`
	Format      string `json:"format"`
	Mode        string `json:"mode"`
	File        string `json:"file"`
	FileSHA256  string `json:"file_sha256"`
	State       string `json:"state"` // running, done, failed
	Error       string `json:"error,omitempty"`
	TotalRows   int64  `json:"total_rows"`
	Rows        int64  `json:"rows"`
	Accepted    int64  `json:"accepted"`
	Duplicates  int64  `json:"duplicates"`
	Quarantined int64  `json:"quarantined"`
	// Suppressed rows carried an erased person's identifier (docs/erasure.md):
	// dropped before the log, as the tracking API drops them.
	Suppressed int64                  `json:"suppressed,omitempty"`
	Reasons    map[string]int64       `json:"reasons"`
	Invalid    map[string]int64       `json:"invalid_reasons,omitempty"`
	Fields     map[string]*FieldStats `json:"fields,omitempty"`
	Derived    *Counts                `json:"derived,omitempty"`
	StartedAt  time.Time              `json:"started_at"`
	FinishedAt *time.Time             `json:"finished_at,omitempty"`
	Seconds    float64                `json:"seconds"`
	RowsPerSec float64                `json:"rows_per_second"`
	// Profiles in the store once the import's events were applied (the
	// command line fills it; the API answers before processing).
	Profiles int `json:"profiles,omitempty"`
	// Examples shows, for each reason counted in Reasons and Invalid, the
	// first rows it happened on with the value at fault.
	Examples []Example      `json:"examples,omitempty"`
	examples map[string]int // examples kept per reason key
	// ProbableDuplicates are profiles of this import that an identity
	// limit kept apart from others although they share a person's
	// identifiers (filled once the events are applied, by whoever shows
	// the summary; see linkage.ProbableDuplicates).
	ProbableDuplicates *portrait.DuplicateReport `json:"probable_duplicates,omitempty"`
	// Mapping is the mapping used, as column → field, for people to check
	// what their columns were read as.
	Mapping *MappingView `json:"mapping,omitempty"`
}

// Example is one bad value or quarantined row, for the summary.
type Example struct {
	Row         int    `json:"row"`
	Quarantined bool   `json:"quarantined,omitempty"` // the row is in the quarantine; otherwise the value was left unset
	Field       string `json:"field,omitempty"`
	Column      string `json:"column,omitempty"`
	Value       string `json:"value,omitempty"`
	Reason      string `json:"reason"`
	// Key is the reason as counted in Reasons or Invalid.
	Key string `json:"key"`
	// MessageID is the row's event: an erasure of its person finds the
	// example by it, since the value is no identifier of theirs.
	MessageID string `json:"message_id,omitempty"`
}

// Bounds of Summary.Examples: a file of a million bad rows gives a summary
// of a few hundred lines, not a million.
const (
	examplesPerReason = 5
	maxExamples       = 200
)

// example keeps e when its reason has fewer than examplesPerReason.
func (s *Summary) example(e Example) {
	if len(s.Examples) >= maxExamples || s.examples[e.Key] >= examplesPerReason {
		return
	}
	if s.examples == nil {
		s.examples = map[string]int{}
	}
	s.examples[e.Key]++
	s.Examples = append(s.Examples, e)
}

// States of an import.
const (
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
)

// Import runs the import and returns its summary. A malformed file is
// found by the checking pass, before anything is written, and returned as
// an EINVALID error naming the row and column; the summary is then nil.
func (im *Importer) Import(ctx context.Context, in Input, opt Options) (*Summary, error) {
	now := time.Now
	if im.Now != nil {
		now = im.Now
	}
	m := opt.Mapping
	if m == nil {
		return nil, portrait.Errorf(portrait.EINVALID, "an import needs a mapping")
	}
	if strings.TrimSpace(opt.Source) == "" {
		return nil, portrait.Errorf(portrait.EINVALID, "an import needs a source name")
	}
	start := now()
	sum := &Summary{ID: opt.ID, Source: opt.Source, Format: opt.Format, Mode: m.Mode, File: in.Name, State: StateRunning,
		Reasons: map[string]int64{}, Invalid: map[string]int64{}, Fields: map[string]*FieldStats{}, StartedAt: start.UTC(), Mapping: m.View()}
	chk, err := im.check(ctx, in, opt)
	if err != nil {
		return nil, err
	}
	sum.FileSHA256, sum.TotalRows = chk.hash, chk.rows
	if sum.ID == "" {
		sum.ID = ImportID(opt.Source, chk.hash)
	}
	im.save(ctx, sum)
	if err := im.run(ctx, in, opt, chk, sum); err != nil {
		sum.State, sum.Error = StateFailed, portrait.ErrorMessage(err)
		im.finish(ctx, sum, start, now())
		return sum, err
	}
	sum.State = StateDone
	im.finish(ctx, sum, start, now())
	return sum, nil
}

// ImportID is the id of importing a file's content into a source: the same
// file imported again has the same id.
func ImportID(source, fileHash string) string {
	h := sha256.Sum256([]byte(source + "\x00" + fileHash))
	return "imp_" + hex.EncodeToString(h[:8])
}

func (im *Importer) finish(ctx context.Context, sum *Summary, start, end time.Time) {
	fin := end.UTC()
	sum.FinishedAt = &fin
	for _, fs := range sum.Fields {
		fs.Valid = fs.Present - fs.Invalid
	}
	sum.Seconds = end.Sub(start).Seconds()
	if sum.Seconds > 0 {
		sum.RowsPerSec = float64(sum.Rows) / sum.Seconds
	}
	im.save(context.WithoutCancel(ctx), sum)
}

func (im *Importer) save(ctx context.Context, sum *Summary) {
	if im.Runs == nil {
		return
	}
	b, _ := json.Marshal(sum)
	// The summary is a record of the import, not part of it: failing to
	// keep it must not fail an import whose events are already durable.
	_ = im.Runs.SaveImport(ctx, sum.ID, sum.Source, sum.State, b)
}

type checked struct {
	hash  string
	rows  int64
	fills map[int][]clean.Imputation // by row number
}

// check reads the whole file once: its content hash (the file's identity in
// message ids), its syntax (a malformed file fails here, before anything is
// written, so that fixing it and importing again cannot duplicate the rows
// already written), its row count (for progress), and, when the mapping has
// fill rules, the values they need (a most-frequent rule looks at every row).
func (im *Importer) check(ctx context.Context, in Input, opt Options) (*checked, error) {
	f, err := in.Open()
	if err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "cannot open %s: %v", in.Name, err)
	}
	defer f.Close()
	h := sha256.New()
	var n int64
	rd, err := NewReaderLimits(opt.Format, io.TeeReader(countingReader{f, &n}, h), opt.Mapping.Sheet, im.Limits)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	m := opt.Mapping
	if rd.Fixed() {
		var missing []string
		for _, c := range m.columns() {
			if !rd.Header().Has(c) && !contains(missing, c) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			return nil, portrait.Errorf(portrait.EINVALID, "the mapping names columns the file does not have: %s (the file has: %s)",
				strings.Join(missing, ", "), strings.Join(rd.Header().Names(), ", "))
		}
	}
	chk := &checked{}
	var fillRows []int
	var fillRecs []map[string]string
	for {
		if err := ctx.Err(); err != nil {
			return nil, portrait.Errorf(portrait.EUNAVAILABLE, "import cancelled")
		}
		row, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		chk.rows++
		if len(m.Fill) > 0 {
			c := m.convert(row)
			if c.reject == "" {
				rec := map[string]string{}
				for k, v := range c.traits {
					rec[k] = fmt.Sprint(v)
				}
				fillRows = append(fillRows, row.Num)
				fillRecs = append(fillRecs, rec)
			}
		}
		if opt.Progress != nil && chk.rows%20000 == 0 {
			opt.Progress(Progress{Phase: "checking", Rows: chk.rows, Bytes: n, TotalSize: in.Size})
		}
	}
	// Drain what the reader did not consume (a gzip trailer, XLSX parts) so
	// the hash covers the whole file.
	if _, err := io.Copy(h, f); err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "cannot read %s: %v", in.Name, err)
	}
	chk.hash = hex.EncodeToString(h.Sum(nil))
	if len(m.Fill) > 0 {
		filler, err := clean.NewFiller(m.Fill)
		if err != nil {
			return nil, err
		}
		chk.fills = map[int][]clean.Imputation{}
		for _, imp := range filler.Fill(fillRecs) {
			rn := fillRows[imp.Row]
			chk.fills[rn] = append(chk.fills[rn], imp)
		}
	}
	return chk, nil
}

// pending is a batch on its way to the log.
type pending struct {
	events   []*portrait.Event
	derived  []bool // parallel to events
	rejected []*portrait.Rejected
	rejDer   []bool // parallel to rejected
	rows     int64  // rows covered
	bytes    int64
}

func (im *Importer) run(ctx context.Context, in Input, opt Options, chk *checked, sum *Summary) error {
	f, err := in.Open()
	if err != nil {
		return portrait.Errorf(portrait.EINVALID, "cannot open %s: %v", in.Name, err)
	}
	defer f.Close()
	var nbytes int64
	rd, err := NewReaderLimits(opt.Format, countingReader{f, &nbytes}, opt.Mapping.Sheet, im.Limits)
	if err != nil {
		return err
	}
	defer rd.Close()
	batchSize := im.BatchSize
	if batchSize <= 0 {
		batchSize = 2000
	}
	m := opt.Mapping
	if m.Aggregate != nil {
		sum.Derived = &Counts{Reasons: map[string]int64{}}
	}
	receivedAt := sum.StartedAt
	if im.Now != nil {
		receivedAt = im.Now().UTC()
	}

	// Appending runs beside conversion: while one batch waits for its
	// fsync, the next is being built.
	batches := make(chan *pending, 2)
	appendErr := make(chan error, 1)
	go func() {
		var firstErr error
		for p := range batches {
			if firstErr != nil {
				continue
			}
			if err := im.appendBatch(ctx, p, sum); err != nil {
				firstErr = err
				continue
			}
			if opt.Progress != nil {
				reasons := make(map[string]int64, len(sum.Reasons))
				for k, v := range sum.Reasons {
					reasons[k] = v
				}
				opt.Progress(Progress{Phase: "importing", Rows: sum.Rows, TotalRows: chk.rows, Bytes: p.bytes, TotalSize: in.Size,
					Accepted: sum.Accepted, Duplicates: sum.Duplicates, Quarantined: sum.Quarantined, Suppressed: sum.Suppressed, Reasons: reasons})
			}
		}
		appendErr <- firstErr
	}()

	cur := &pending{}
	var agg *group
	flushAgg := func() error {
		if agg == nil {
			return nil
		}
		g := agg
		agg = nil
		if g.lines == 0 {
			return nil
		}
		ev, rej := im.aggregateEvent(g, m, opt, sum, receivedAt)
		if ev != nil {
			cur.events = append(cur.events, ev)
			cur.derived = append(cur.derived, true)
		}
		if rej != nil {
			cur.rejected = append(cur.rejected, rej)
			cur.rejDer = append(cur.rejDer, true)
		}
		return nil
	}
	send := func() bool {
		cur.bytes = nbytes
		select {
		case batches <- cur:
		case <-ctx.Done():
			return false
		}
		cur = &pending{}
		return true
	}
	var readErr error
	for {
		if ctx.Err() != nil {
			readErr = portrait.Errorf(portrait.EUNAVAILABLE, "import cancelled; run it again to resume (rows already imported are recognised)")
			break
		}
		row, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			// The checking pass read the same bytes; a different outcome
			// means the file changed underneath the import.
			readErr = err
			break
		}
		if m.Aggregate != nil {
			key := groupKey(row, m.Aggregate.GroupBy)
			if agg == nil || agg.key != key {
				flushAgg()
				agg = &group{key: key, firstRow: row.Num, name: caseName(m.Aggregate.Name, m.Aggregate.Cases, row)}
			}
		}
		ev, rej, props := im.convertRow(row, m, opt, chk, sum, receivedAt)
		if ev != nil {
			cur.events = append(cur.events, ev)
			cur.derived = append(cur.derived, false)
			if agg != nil {
				agg.add(row.Num, ev, props, m.Aggregate)
			}
		} else {
			cur.rejected = append(cur.rejected, rej)
			cur.rejDer = append(cur.rejDer, false)
		}
		cur.rows++
		if cur.rows >= int64(batchSize) {
			if !send() {
				break
			}
		}
	}
	if readErr == nil {
		flushAgg()
	}
	if cur.rows > 0 || len(cur.events) > 0 || len(cur.rejected) > 0 {
		if !send() && readErr == nil {
			readErr = portrait.Errorf(portrait.EUNAVAILABLE, "import cancelled; run it again to resume (rows already imported are recognised)")
		}
	}
	close(batches)
	if err := <-appendErr; err != nil {
		return err
	}
	if readErr == nil && ctx.Err() != nil {
		readErr = portrait.Errorf(portrait.EUNAVAILABLE, "import cancelled; run it again to resume (rows already imported are recognised)")
	}
	return readErr
}

// appendBatch writes a batch and counts the outcome. Appending is
// idempotent by message id, and the quarantine of imported rows is keyed by
// the row's message id too (see sqlite migration 002), so a batch retried
// after a crash is counted as duplicates, never twice.
func (im *Importer) appendBatch(ctx context.Context, p *pending, sum *Summary) error {
	if _, err := im.Log.Append(ctx, p.events, p.rejected); err != nil {
		return err
	}
	for i, e := range p.events {
		c := &sum.Accepted
		d := &sum.Duplicates
		sp := &sum.Suppressed
		if p.derived[i] {
			c, d, sp = &sum.Derived.Accepted, &sum.Derived.Duplicates, &sum.Derived.Suppressed
			sum.Derived.Events++
		}
		// The log sets Seq for a new event and leaves it 0 for a
		// duplicate; the suppression list marks what it dropped.
		switch {
		case e.Seq > 0:
			*c++
		case e.Seq == portrait.SeqSuppressed:
			*sp++
		default:
			*d++
		}
	}
	for i, r := range p.rejected {
		key := reasonKey(r.Reason)
		if p.rejDer[i] {
			sum.Derived.Events++
			sum.Derived.Quarantined++
			sum.Derived.Reasons[key]++
			continue
		}
		sum.Quarantined++
		sum.Reasons[key]++
		sum.example(Example{Row: r.Index, Quarantined: true, Reason: rowPrefix.ReplaceAllString(r.Reason, ""), Key: key})
	}
	sum.Rows += p.rows
	return nil
}

var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
var rowPrefix = regexp.MustCompile(`^row \d+: `)

// reasonKey groups reasons that differ only in the quoted value or the row
// number, so that the summary shows kinds of problems, not every value.
func reasonKey(r string) string {
	r = rowPrefix.ReplaceAllString(r, "")
	return quoted.ReplaceAllString(r, `"…"`)
}

// messageID is deterministic: the same row of the same file in the same
// source always has the same id, which is what makes re-imports no-ops.
func messageID(m *Mapping, source, fileHash string, row *Row, suffix string) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	if len(m.Key) > 0 {
		// Key columns identify the row whatever file it comes in.
		for _, k := range m.Key {
			h.Write([]byte(strings.TrimSpace(row.Get(k))))
			h.Write([]byte{0})
		}
	} else {
		h.Write([]byte(fileHash))
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(row.Num)))
	}
	h.Write([]byte(suffix))
	return "imp-" + hex.EncodeToString(h.Sum(nil)[:16])
}

func (im *Importer) convertRow(row *Row, m *Mapping, opt Options, chk *checked, sum *Summary, receivedAt time.Time) (*portrait.Event, *portrait.Rejected, map[string]any) {
	msgID := messageID(m, opt.Source, chk.hash, row, "")
	c := m.convert(row)
	for _, f := range c.present {
		fieldStats(sum, f).Present++
	}
	for _, p := range c.problems {
		fieldStats(sum, p.Field).Invalid++
		key := p.Field + ": " + reasonKey(p.Reason)
		sum.Invalid[key]++
		sum.example(Example{Row: row.Num, Field: p.Field, Column: p.Column, Value: p.Value, Reason: p.Reason, Key: key, MessageID: msgID})
	}
	if c.reject != "" {
		return nil, im.quarantine(row, opt, sum.File, msgID, c.reject, nil, receivedAt), nil
	}
	var imputed []map[string]string
	for _, imp := range chk.fills[row.Num] {
		if _, ok := c.traits[imp.Field]; ok {
			continue
		}
		c.traits[imp.Field] = imp.Value
		imputed = append(imputed, map[string]string{"field": imp.Field, "rule": imp.Rule, "source": imp.Source})
	}
	meta := map[string]any{"source": opt.Source, "file": opt.fileLabel(sum), "row": row.Num}
	if len(c.problems) > 0 {
		meta["invalid"] = c.problems
	}
	if len(imputed) > 0 {
		// Provenance of imputed values: a trait's message id leads to this
		// event, whose context says the value was assumed, by which rule.
		meta["imputed"] = imputed
	}
	body, err := c.body(msgID, meta)
	if err != nil {
		return nil, im.quarantine(row, opt, sum.File, msgID, "cannot encode the row: "+err.Error(), nil, receivedAt), nil
	}
	res, _ := im.Parser.ParseSingle(body, c.typ, opt.Source, receivedAt)
	if len(res.Rejected) > 0 {
		return nil, im.quarantine(row, opt, sum.File, msgID, res.Rejected[0].Reason, body, receivedAt), nil
	}
	// Imputed values count only where they were stored.
	for _, imp := range imputed {
		fieldStats(sum, "trait:"+imp["field"]).Imputed++
	}
	return res.Events[0], nil, c.props
}

func (o Options) fileLabel(sum *Summary) string {
	if sum.File != "" {
		return sum.File
	}
	return sum.FileSHA256
}

func fieldStats(sum *Summary, f string) *FieldStats {
	fs := sum.Fields[f]
	if fs == nil {
		fs = &FieldStats{}
		sum.Fields[f] = fs
	}
	return fs
}

// quarantineRecord is what the quarantine keeps of an imported row: the row
// itself (by column) and where it came from. import_key is the message id
// the row would have had; the store keys imported quarantine on it.
type quarantineRecord struct {
	ImportKey string            `json:"import_key"`
	Source    string            `json:"source"`
	File      string            `json:"file"`
	Row       int               `json:"row"`
	Line      int               `json:"line"`
	Values    map[string]string `json:"values"`
	Event     json.RawMessage   `json:"event,omitempty"`
}

func (im *Importer) quarantine(row *Row, opt Options, file, key, reason string, event []byte, at time.Time) *portrait.Rejected {
	rec := quarantineRecord{ImportKey: key, Source: opt.Source, File: file, Row: row.Num, Line: row.Line, Values: row.Map(), Event: event}
	raw, _ := json.Marshal(rec)
	return &portrait.Rejected{Source: opt.Source, Index: row.Num, Reason: fmt.Sprintf("row %d: %s", row.Num, reason), Raw: raw, ReceivedAt: at, Key: key}
}

func groupKey(row *Row, cols []string) string {
	var b strings.Builder
	for _, c := range cols {
		b.WriteString(strings.TrimSpace(row.Get(c)))
		b.WriteByte(0)
	}
	return b.String()
}

// SortedReasons returns reasons by count, most frequent first.
func SortedReasons(m map[string]int64) []ReasonCount {
	out := make([]ReasonCount, 0, len(m))
	for r, n := range m {
		out = append(out, ReasonCount{r, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

// ReasonCount is one reason and how often it occurred.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}
