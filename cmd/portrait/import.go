package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/linkage"
	"github.com/portrait-cdp/portrait/tracking"
)

const importUsage = `usage: portrait import --source NAME [--format csv|jsonl|xlsx] [--map mapping.yaml] [--data DIR] [--json] FILE

Imports FILE (gzip-compressed or not) into the event log of the embedded
store under --data, with the validation, cleaning and quarantine of the
tracking API. The mapping (docs/import.md) says what a row is; without one,
every column becomes a trait of the same name and the person is identified
by a column named user_id, customer_id or id. Importing the same file again
changes nothing; an interrupted import resumes when run again.

The import writes the store directly, so no server may be running on the
same --data; while one is, upload through its API instead:
  curl -H "Authorization: Bearer $TOKEN" -F source=NAME -F format=csv \
       -F file=@FILE -F mapping=@mapping.yaml http://HOST/v1/imports

flags:
`

// runImport implements "portrait import".
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, importUsage); fs.PrintDefaults() }
	source := fs.String("source", "", "source name the rows are attributed to (required)")
	format := fs.String("format", "", "csv, jsonl or xlsx (default: from the file name)")
	mapFile := fs.String("map", "", "mapping YAML (docs/import.md)")
	dataDir := fs.String("data", "./portrait-data", "data directory of the embedded store")
	rulesFile := fs.String("rules", "", "identity rules YAML (for blocked identifier values)")
	asJSON := fs.Bool("json", false, "machine-readable output")
	batch := fs.Int("batch", 2000, "rows per append")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return errUsage
	}
	if len(files) != 1 {
		fs.Usage()
		return portrait.Errorf(portrait.EINVALID, "import: give exactly one FILE")
	}
	if strings.TrimSpace(*source) == "" {
		return portrait.Errorf(portrait.EINVALID, "import: --source is required")
	}
	path := files[0]
	if *format == "" {
		*format = formatOf(path)
		if *format == "" {
			return portrait.Errorf(portrait.EINVALID, "import: cannot tell the format of %s from its name; give --format csv|jsonl|xlsx", path)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return portrait.Errorf(portrait.EINVALID, "import: %v", err)
	}
	in := importer.Input{Name: filepath.Base(path), Size: st.Size(), Open: func() (io.ReadCloser, error) { return os.Open(path) }}
	var m *importer.Mapping
	if *mapFile != "" {
		if m, err = importer.LoadMapping(*mapFile); err != nil {
			return err
		}
	} else if m, err = importer.InferMapping(in, *format); err != nil {
		if errors.Is(err, importer.ErrNoIdentity) {
			return portrait.Errorf(portrait.EINVALID, "%s: pass it with --map FILE", portrait.ErrorMessage(err))
		}
		return err
	}
	if portrait.IsSystemSource(*source) {
		return portrait.Errorf(portrait.EINVALID, "source %q is reserved for Portrait's own events", *source)
	}
	rules, err := loadRules(*rulesFile)
	if err != nil {
		return err
	}

	// The whole app, not just the store: after the import the profiles are
	// derived with the same configuration serve uses (cleaning, computed
	// traits, tags), so that nothing derived differs from a server's.
	a, err := OpenApp(ctx, Config{DataDir: *dataDir, RulesFile: *rulesFile, LogLevel: "error"}, stderr)
	if err != nil {
		if portrait.ErrorCode(err) == portrait.ECONFLICT {
			return portrait.Errorf(portrait.ECONFLICT, "the data directory %s is in use by a running portrait server; stop it, or upload through its API: curl -H \"Authorization: Bearer $TOKEN\" -F source=%s -F format=%s -F file=@%s%s http://HOST/v1/imports",
				*dataDir, *source, *format, path, mapArg(*mapFile))
		}
		return err
	}
	defer a.Close()
	db := a.DB

	parser := tracking.New()
	parser.Blocked = rules.IsBlocked
	im := &importer.Importer{Log: db, Runs: db, Parser: parser, BatchSize: *batch}
	opt := importer.Options{Source: *source, Format: *format, Mapping: m}
	var bar *progressBar
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = &progressBar{w: stderr, start: time.Now()}
		opt.Progress = bar.update
	}
	sum, err := im.Import(ctx, in, opt)
	if bar != nil {
		bar.done()
	}
	if err == nil {
		if last, lerr := db.LastSeq(ctx); lerr != nil {
			err = lerr
		} else if perr := a.Proc.CatchUp(ctx, last); perr != nil {
			err = perr
		} else if sum != nil {
			n, _ := db.CountProfiles(ctx)
			sum.Profiles = n
			file := sum.File
			if file == "" {
				file = sum.FileSHA256
			}
			ds, derr := linkage.ProbableDuplicates(ctx, db, linkage.FromImport(sum.Source, file))
			if derr != nil {
				err = derr
			} else {
				sum.ProbableDuplicates = linkage.Report(ds, 100)
			}
		}
	}
	if sum != nil {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetEscapeHTML(false)
			if e := enc.Encode(sum); e != nil && err == nil {
				err = e
			}
		} else {
			printImportSummary(stdout, sum)
		}
	}
	return err
}

func mapArg(f string) string {
	if f == "" {
		return ""
	}
	return " -F mapping=@" + f
}

// formatOf guesses the format from the file name (a .gz suffix is looked
// through: the readers decompress).
func formatOf(path string) string {
	p := strings.ToLower(strings.TrimSuffix(strings.ToLower(path), ".gz"))
	switch {
	case strings.HasSuffix(p, ".csv"), strings.HasSuffix(p, ".txt"):
		return importer.FormatCSV
	case strings.HasSuffix(p, ".jsonl"), strings.HasSuffix(p, ".ndjson"), strings.HasSuffix(p, ".json"):
		return importer.FormatJSONL
	case strings.HasSuffix(p, ".xlsx"):
		return importer.FormatXLSX
	}
	return ""
}

// parseInterspersed lets flags follow the file name ("import FILE --json"),
// which the flag package alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func printImportSummary(w io.Writer, s *importer.Summary) {
	fmt.Fprintf(w, "import %s: %s (%s) into source %q: %s\n", s.ID, s.File, s.Format, s.Source, s.State)
	fmt.Fprintf(w, "  rows %d = accepted %d + duplicates %d + quarantined %d   (%.1fs, %.0f rows/s)\n",
		s.Rows, s.Accepted, s.Duplicates, s.Quarantined, s.Seconds, s.RowsPerSec)
	if s.Profiles > 0 {
		fmt.Fprintf(w, "  profiles in the store after applying it: %d\n", s.Profiles)
	}
	if d := s.ProbableDuplicates; d != nil && d.Count > 0 {
		fmt.Fprintf(w, "  probable duplicates %d: profiles an identity limit keeps apart although they share a person's identifiers (review: GET /v1/linkage/duplicates)\n", d.Count)
		for _, p := range d.Pairs {
			var shared []string
			for _, id := range p.Shared {
				shared = append(shared, id.Type+" "+id.Value)
			}
			fmt.Fprintf(w, "    %s and %s share %s\n", p.AProfile, p.BProfile, strings.Join(shared, ", "))
		}
		if d.Count > len(d.Pairs) {
			fmt.Fprintf(w, "    … and %d more\n", d.Count-len(d.Pairs))
		}
	}
	if d := s.Derived; d != nil {
		fmt.Fprintf(w, "  aggregate events %d = accepted %d + duplicates %d + quarantined %d\n", d.Events, d.Accepted, d.Duplicates, d.Quarantined)
	}
	for _, r := range importer.SortedReasons(s.Reasons) {
		fmt.Fprintf(w, "  quarantined %7d  %s\n", r.Count, r.Reason)
	}
	for _, r := range importer.SortedReasons(s.Invalid) {
		fmt.Fprintf(w, "  left unset  %7d  %s\n", r.Count, r.Reason)
	}
	if len(s.Examples) > 0 {
		fmt.Fprintf(w, "  examples (at most a few per reason):\n")
		for _, e := range s.Examples {
			where := fmt.Sprintf("row %d", e.Row)
			if e.Column != "" {
				where += ", column " + e.Column
			}
			if e.Value != "" {
				where += fmt.Sprintf(", value %q", e.Value)
			}
			fmt.Fprintf(w, "    %s: %s\n", where, e.Reason)
		}
	}
	var imputed []string
	for f, st := range s.Fields {
		if st.Imputed > 0 {
			imputed = append(imputed, fmt.Sprintf("%s %d", f, st.Imputed))
		}
	}
	sort.Strings(imputed)
	if len(imputed) > 0 {
		fmt.Fprintf(w, "  imputed: %s\n", strings.Join(imputed, ", "))
	}
	if s.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", s.Error)
	}
}

// progressBar draws one line on a terminal, redrawn with \r; it is only
// used when stderr is a terminal, so logs and pipes get no control noise.
type progressBar struct {
	w     io.Writer
	start time.Time
	last  time.Time
	phase string
	base  int64 // rows already counted when the phase started
	drawn bool
	now   func() time.Time // time.Now unless a test sets it
}

// minRateWindow: a rate over less time than this is noise (8 rows in a
// microsecond are not 8,000,000,000 rows/s), so none is shown yet.
const minRateWindow = 500 * time.Millisecond

func (b *progressBar) update(p importer.Progress) {
	now := time.Now()
	if b.now != nil {
		now = b.now()
	}
	if p.Phase != b.phase {
		// Each pass has its own rate, over the rows of that pass.
		b.phase, b.start, b.base = p.Phase, now, p.Rows
	}
	if now.Sub(b.last) < 100*time.Millisecond {
		return
	}
	b.last = now
	frac := 0.0
	switch {
	case p.TotalRows > 0:
		frac = float64(p.Rows) / float64(p.TotalRows)
	case p.TotalSize > 0:
		frac = float64(p.Bytes) / float64(p.TotalSize)
	}
	frac = min(max(frac, 0), 1)
	const width = 30
	n := int(frac * width)
	bar := strings.Repeat("=", n) + strings.Repeat(" ", width-n)
	rate := "   … rows/s"
	if el := now.Sub(b.start); el >= minRateWindow {
		rate = fmt.Sprintf("%.0f rows/s", float64(p.Rows-b.base)/el.Seconds())
	}
	fmt.Fprintf(b.w, "\r%-9s [%s] %3.0f%% %d rows  %s ", p.Phase, bar, frac*100, p.Rows, rate)
	b.drawn = true
}

func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
}
