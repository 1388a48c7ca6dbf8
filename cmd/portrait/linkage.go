package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/linkage"
)

const linkageUsage = `usage: portrait linkage eval --id-column COLUMN --truth REGEXP [--json] [options] FILE...

Links the records of the CSV files (several files are linked together as one
set) and scores the result against the truth encoded in the id column: records
whose ids give the same first capture group of REGEXP are the same entity. The
id column is used only for scoring; the linkage never sees it. Predicted pairs
are all pairs within the linked entities (the transitive closure of the
matches), which is what merging them through the identity graph yields.

options:
`

// runLinkage implements "portrait linkage ...": args are what follows
// "portrait linkage".
func runLinkage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, linkageUsage)
		evalFlags(stderr).fs.PrintDefaults()
		if len(args) == 0 {
			return portrait.Errorf(portrait.EINVALID, "linkage: missing subcommand (eval)")
		}
		return nil
	}
	switch args[0] {
	case "eval":
		return runLinkageEval(ctx, args[1:], stdout, stderr)
	}
	return portrait.Errorf(portrait.EINVALID, "linkage: unknown subcommand %q (want eval)", args[0])
}

type linkageEvalFlags struct {
	fs       *flag.FlagSet
	idColumn *string
	truth    *string
	json     *bool
	match    *float64
	review   *float64
	fields   *string
}

func evalFlags(out io.Writer) *linkageEvalFlags {
	fs := flag.NewFlagSet("portrait linkage eval", flag.ContinueOnError)
	fs.SetOutput(out)
	f := &linkageEvalFlags{fs: fs}
	f.idColumn = fs.String("id-column", "", "column holding the record id; used only for scoring (required)")
	f.truth = fs.String("truth", "", "regular expression over the id; its first capture group (or whole match) names the true entity (required)")
	f.json = fs.Bool("json", false, "print the scores as one JSON object")
	f.match = fs.Float64("match", 0, "posterior match probability for a match (default 0.9)")
	f.review = fs.Float64("review", 0, "posterior match probability for clerical review (default 0.5)")
	f.fields = fs.String("fields", "", "comma-separated column:kind declarations overriding inference, e.g. 'nom:name,ville:text,ref:ignore'; kinds: "+kindList())
	return f
}

func kindList() string {
	var ks []string
	for k := linkage.KindIgnore; k <= linkage.KindCategory; k++ {
		ks = append(ks, k.String())
	}
	return strings.Join(ks, ", ")
}

type evalOutput struct {
	Records        int     `json:"records"`
	TruePairs      int     `json:"true_pairs"`
	PredictedPairs int     `json:"predicted_pairs"`
	Precision      float64 `json:"precision"`
	Recall         float64 `json:"recall"`
	F1             float64 `json:"f1"`
	// Merged profiles: entities holding exactly one true entity's records.
	Clusters      linkage.ClusterScores `json:"merged_profiles"`
	ModelCredible bool                  `json:"model_credible"`
	ModelWarning  string                `json:"model_warning,omitempty"`
}

func runLinkageEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := evalFlags(stderr)
	f.fs.Usage = func() {
		fmt.Fprint(stderr, linkageUsage)
		f.fs.PrintDefaults()
	}
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return portrait.Errorf(portrait.EINVALID, "linkage eval: %v", err)
	}
	files := f.fs.Args()
	switch {
	case len(files) == 0:
		return portrait.Errorf(portrait.EINVALID, "linkage eval: no input files")
	case *f.idColumn == "":
		return portrait.Errorf(portrait.EINVALID, "linkage eval: --id-column is required")
	case *f.truth == "":
		return portrait.Errorf(portrait.EINVALID, "linkage eval: --truth is required")
	}
	truth, err := regexp.Compile(*f.truth)
	if err != nil {
		return portrait.Errorf(portrait.EINVALID, "linkage eval: --truth: %v", err)
	}
	overrides, err := parseFieldKinds(*f.fields)
	if err != nil {
		return err
	}

	// Read every file; the union of their columns (in order of first
	// appearance) is the field list.
	var records []linkage.Record
	var labels []string
	var columns []string
	seenCol := map[string]bool{}
	unlabelled := 0
	for _, name := range files {
		hdr, recs, err := readCSVFile(name)
		if err != nil {
			return err
		}
		hasID := false
		for _, c := range hdr {
			if c == *f.idColumn {
				hasID = true
			}
			if !seenCol[c] {
				seenCol[c] = true
				columns = append(columns, c)
			}
		}
		if !hasID {
			return portrait.Errorf(portrait.EINVALID, "linkage eval: %s has no column %q", name, *f.idColumn)
		}
		for _, r := range recs {
			label := ""
			if m := truth.FindStringSubmatch(r[*f.idColumn]); m != nil {
				label = m[0]
				if len(m) > 1 {
					label = m[1]
				}
			}
			if label == "" {
				unlabelled++
			}
			// The linkage must never see the id: remove it from the record.
			delete(r, *f.idColumn)
			records = append(records, r)
			labels = append(labels, label)
		}
	}
	if unlabelled == len(records) && len(records) > 0 {
		return portrait.Errorf(portrait.EINVALID, "linkage eval: --truth %q matches none of the %d ids in column %q", *f.truth, len(records), *f.idColumn)
	}
	if unlabelled > 0 {
		fmt.Fprintf(stderr, "linkage eval: %d of %d ids do not match --truth; they count as matching nothing\n", unlabelled, len(records))
	}

	fields := linkage.InferFields(columns, *f.idColumn)
	for i := range fields {
		if k, ok := overrides[fields[i].Name]; ok {
			fields[i].Kind = k
			delete(overrides, fields[i].Name)
		}
	}
	for name := range overrides {
		return portrait.Errorf(portrait.EINVALID, "linkage eval: --fields names %q, which is not a column of the input", name)
	}

	start := time.Now()
	res, err := linkage.LinkContext(ctx, records, linkage.Config{
		Fields:          fields,
		MatchThreshold:  *f.match,
		ReviewThreshold: *f.review,
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	s := linkage.Evaluate(res.EntityPairs(), labels)
	cs := linkage.EvaluateClusters(res.Entities, labels)

	if *f.json {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(evalOutput{
			Records: s.Records, TruePairs: s.TruePairs, PredictedPairs: s.PredictedPairs,
			Precision: s.Precision, Recall: s.Recall, F1: s.F1,
			Clusters: cs, ModelCredible: res.Credible, ModelWarning: res.Warning,
		})
	}
	reviews := len(res.Pairs) - len(res.Matches())
	fmt.Fprintf(stdout, "records          %d\n", s.Records)
	fmt.Fprintf(stdout, "fields           %s\n", describeFields(fields))
	fmt.Fprintf(stdout, "candidate pairs  %d\n", res.Candidates)
	fmt.Fprintf(stdout, "matches          %d (%d entities), %d pairs for review\n", len(res.Matches()), len(res.Entities), reviews)
	fmt.Fprintf(stdout, "true pairs       %d\n", s.TruePairs)
	fmt.Fprintf(stdout, "predicted pairs  %d (%d correct)\n", s.PredictedPairs, s.CorrectPairs)
	fmt.Fprintf(stdout, "precision        %.4f\n", s.Precision)
	fmt.Fprintf(stdout, "recall           %.4f\n", s.Recall)
	fmt.Fprintf(stdout, "f1               %.4f\n", s.F1)
	fmt.Fprintf(stdout, "merged profiles  %d true, %d predicted, %d exact: precision %.4f recall %.4f f1 %.4f\n",
		cs.TrueClusters, cs.PredictedClusters, cs.ExactClusters, cs.Precision, cs.Recall, cs.F1)
	if !res.Credible {
		fmt.Fprintf(stdout, "model            not credible: %s\n", res.Warning)
	}
	fmt.Fprintf(stdout, "time             %s\n", elapsed.Round(time.Millisecond))
	return nil
}

func describeFields(fields []linkage.Field) string {
	var parts []string
	for _, f := range fields {
		parts = append(parts, f.Name+":"+f.Kind.String())
	}
	return strings.Join(parts, " ")
}

func parseFieldKinds(spec string) (map[string]linkage.Kind, error) {
	out := map[string]linkage.Kind{}
	if strings.TrimSpace(spec) == "" {
		return out, nil
	}
	for _, item := range strings.Split(spec, ",") {
		name, kind, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok || name == "" {
			return nil, portrait.Errorf(portrait.EINVALID, "linkage eval: --fields: %q is not column:kind", item)
		}
		k, ok := linkage.ParseKind(kind)
		if !ok {
			return nil, portrait.Errorf(portrait.EINVALID, "linkage eval: --fields: unknown kind %q for %q (kinds: %s)", kind, name, kindList())
		}
		out[name] = k
	}
	return out, nil
}

func readCSVFile(name string) ([]string, []linkage.Record, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, nil, portrait.Errorf(portrait.EINVALID, "linkage eval: %v", err)
	}
	defer fh.Close()
	return linkage.ReadCSV(fh, name)
}
