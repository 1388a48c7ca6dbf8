package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/clv"
	"github.com/portrait-cdp/portrait/analytics/dataset"
	"github.com/portrait-cdp/portrait/analytics/fpgrowth"
	"github.com/portrait-cdp/portrait/analytics/kmeans"
	"github.com/portrait-cdp/portrait/analytics/logit"
	"github.com/portrait-cdp/portrait/analytics/rfm"
)

const analyzeUsage = `usage: portrait analyze <method> --input FILE [flags] [--json]

methods:
  kmeans    clusters over numeric CSV columns (--columns 'A,B'); without --k, k is chosen by silhouette
  fpgrowth  frequent itemsets and association rules (--format baskets: one basket per line; invoices: order-line CSV)
  clv       BG/NBD + Gamma-Gamma lifetime value (--format cdnow, online-retail or csv)
  churn     L2 logistic regression on a labelled CSV (--target COLUMN --positive VALUE), stratified 80/20 split
  rfm       recency/frequency/monetary scores and segments over a date range

With --data DIR instead of --input, kmeans, fpgrowth, clv and churn run over
the store (--param name=value) and write their results back onto the profiles, as
the server's schedule and POST /v1/analytics/runs do; RFM scores are kept on
every profile already (rfm_r, rfm_f, rfm_m, rfm_segment).

Run "portrait analyze <method> -h" for its flags.
`

// runAnalyze runs one analysis over a file and prints a table, or JSON with
// --json. args are what follows "portrait analyze".
func runAnalyze(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, analyzeUsage)
		if len(args) == 0 {
			return portrait.Errorf(portrait.EINVALID, "analyze: missing method (kmeans, fpgrowth, clv, churn or rfm)")
		}
		return nil
	}
	if overStore(args[1:]) && args[0] != "rfm" {
		return analyzeStore(ctx, args[0], args[1:], stdout, stderr)
	}
	run := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"kmeans":   analyzeKMeans,
		"fpgrowth": analyzeFPGrowth,
		"clv":      analyzeCLV,
		"churn":    analyzeChurn,
		"rfm":      analyzeRFM,
	}[args[0]]
	if run == nil {
		return portrait.Errorf(portrait.EINVALID, "analyze: unknown method %q (want kmeans, fpgrowth, clv, churn or rfm)", args[0])
	}
	return run(ctx, args[1:], stdout, stderr)
}

// analyzeFlags holds the flags every method shares.
type analyzeFlags struct {
	fs    *flag.FlagSet
	input string
	json  bool
}

func newAnalyzeFlags(method, help string, stderr io.Writer) *analyzeFlags {
	a := &analyzeFlags{fs: flag.NewFlagSet("analyze "+method, flag.ContinueOnError)}
	a.fs.SetOutput(stderr)
	a.fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: portrait analyze %s --input FILE [flags]\n%s\n\nflags:\n", method, help)
		a.fs.PrintDefaults()
	}
	a.fs.StringVar(&a.input, "input", "", "input file (gzip-compressed files are read transparently)")
	a.fs.BoolVar(&a.json, "json", false, "print JSON instead of a table")
	return a
}

// parse parses args; errHelp reports that -h was asked for and answered.
func (a *analyzeFlags) parse(args []string) (help bool, err error) {
	if err := a.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, portrait.Errorf(portrait.EINVALID, "%s: %v", a.fs.Name(), err)
	}
	if a.fs.NArg() > 0 {
		return false, portrait.Errorf(portrait.EINVALID, "%s: unexpected argument %q (flags go before files: use --input)", a.fs.Name(), a.fs.Arg(0))
	}
	if a.input == "" {
		return false, portrait.Errorf(portrait.EINVALID, "%s: --input FILE is required (or --data DIR to run over the store)", a.fs.Name())
	}
	return false, nil
}

// open opens the input, decompressing gzip transparently.
func (a *analyzeFlags) open() (io.Reader, func(), error) {
	f, err := os.Open(a.input)
	if err != nil {
		return nil, nil, portrait.Errorf(portrait.EINVALID, "cannot open input: %v", err)
	}
	r, err := dataset.MaybeGunzip(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return r, func() { f.Close() }, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseDay(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := dataset.ParseTime(s)
	if err != nil {
		return time.Time{}, portrait.Errorf(portrait.EINVALID, "--%s: %s", name, portrait.ErrorMessage(err))
	}
	return t, nil
}

// --- kmeans ---

func analyzeKMeans(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a := newAnalyzeFlags("kmeans", "Clusters rows of a CSV on numeric columns; without --k, k is chosen by silhouette.", stderr)
	columns := a.fs.String("columns", "", "comma-separated column names (default: every all-numeric column)")
	k := a.fs.Int("k", 0, "number of clusters (0: choose k in --kmin..--kmax by silhouette)")
	kmin := a.fs.Int("kmin", 2, "smallest k tried when choosing k")
	kmax := a.fs.Int("kmax", 10, "largest k tried when choosing k")
	std := a.fs.Bool("standardize", true, "cluster z-scores so that features weigh alike whatever their units")
	seed := a.fs.Uint64("seed", 1, "random seed (results are reproducible for a seed)")
	restarts := a.fs.Int("restarts", 10, "k-means++ restarts; the lowest WCSS wins")
	labels := a.fs.Bool("labels", false, "include each row's cluster in the JSON output")
	if help, err := a.parse(args); help || err != nil {
		return err
	}
	r, done, err := a.open()
	if err != nil {
		return err
	}
	data, err := dataset.ReadNumeric(r, splitList(*columns))
	done()
	if err != nil {
		return err
	}
	n, d := data.Rows, len(data.Columns)
	opt := kmeans.Options{K: *k, Seed: *seed, Restarts: *restarts, Standardize: *std}
	var model *kmeans.Model
	var auto *kmeans.AutoResult
	if *k > 0 {
		if model, err = kmeans.Fit(data.Data, n, d, opt); err != nil {
			return err
		}
	} else {
		if auto, err = kmeans.Auto(data.Data, n, d, kmeans.AutoOptions{Options: opt, KMin: *kmin, KMax: *kmax}); err != nil {
			return err
		}
		model = auto.Model
	}
	desc, err := kmeans.Describe(data.Data, n, d, model, data.Columns)
	if err != nil {
		return err
	}
	centers := make([][]float64, model.K)
	for j := range centers {
		centers[j] = model.Center(j)
	}
	out := map[string]any{
		"k": model.K, "wcss": model.WCSS, "sizes": model.Sizes, "centers": centers, "columns": data.Columns,
		"rows": n, "standardized": model.Standardized, "iterations": model.Iterations, "clusters": desc,
	}
	if auto != nil {
		sil := map[string]float64{}
		for _, c := range auto.Curve {
			if c.K >= 2 {
				sil[strconv.Itoa(c.K)] = c.Silhouette
			}
		}
		out["silhouette"] = sil
		out["elbow"] = auto.Curve
		out["elbow_k"] = auto.ElbowK
	}
	if *labels {
		out["labels"] = model.Labels
	}
	if a.json {
		return printJSON(stdout, out)
	}
	space := "input units"
	if model.Standardized {
		space = "z-scores"
	}
	fmt.Fprintf(stdout, "k-means: %d rows, %d features, k = %d, WCSS %.2f (%s)\n", n, d, model.K, model.WCSS, space)
	if auto != nil {
		fmt.Fprintf(stdout, "k chosen by silhouette; the elbow of the WCSS curve is at k = %d\n\n", auto.ElbowK)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "k\tWCSS\tsilhouette\t")
		for _, c := range auto.Curve {
			s := "-"
			if c.K >= 2 {
				s = fmt.Sprintf("%.4f", c.Silhouette)
			}
			fmt.Fprintf(tw, "%d\t%.2f\t%s\t\n", c.K, c.WCSS, s)
		}
		tw.Flush()
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "cluster\tsize\t%s\tdescription\n", strings.Join(data.Columns, "\t"))
	for j, dsc := range desc {
		cells := make([]string, d)
		for f, v := range centers[j] {
			cells[f] = strconv.FormatFloat(v, 'f', 2, 64)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\n", j, dsc.Size, strings.Join(cells, "\t"), dsc.Text)
	}
	return tw.Flush()
}

// --- fpgrowth ---

func analyzeFPGrowth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a := newAnalyzeFlags("fpgrowth", "Frequent itemsets and association rules (support, confidence, lift), as R's arules counts them.", stderr)
	format := a.fs.String("format", "baskets", "baskets: one basket per line, items separated by --sep; invoices: order-line CSV (Online Retail layout or --invoice-column/--item-column)")
	sep := a.fs.String("sep", ",", "item separator for --format baskets")
	invoiceCol := a.fs.String("invoice-column", dataset.OnlineRetail.Invoice, "invoice column for --format invoices")
	itemCol := a.fs.String("item-column", dataset.OnlineRetail.Item, "item column for --format invoices")
	minSup := a.fs.Float64("min-support", 0.01, "minimum support (fraction of baskets)")
	minConf := a.fs.Float64("min-confidence", 0.5, "minimum confidence")
	minLen := a.fs.Int("min-len", 1, "minimum rule length (items in antecedent and consequent)")
	maxLen := a.fs.Int("max-len", 10, "maximum rule and itemset length")
	top := a.fs.Int("top", 10, "rules to list (by confidence, then lift)")
	if help, err := a.parse(args); help || err != nil {
		return err
	}
	r, done, err := a.open()
	if err != nil {
		return err
	}
	var baskets [][]string
	switch *format {
	case "baskets":
		rs := []rune(*sep)
		if len(rs) != 1 {
			done()
			return portrait.Errorf(portrait.EINVALID, "--sep must be one character")
		}
		baskets, err = dataset.ReadBaskets(r, rs[0])
	case "invoices":
		// Baskets need no customer: anonymous lines still belong to invoices.
		cols := dataset.TxColumns{Customer: dataset.OnlineRetail.Customer, Time: dataset.OnlineRetail.Time,
			Quantity: dataset.OnlineRetail.Quantity, Price: dataset.OnlineRetail.Price,
			Invoice: *invoiceCol, Item: *itemCol, KeepAnonymous: true}
		var txs []dataset.Transaction
		if txs, _, err = dataset.ReadTransactionsCSV(r, cols); err == nil {
			baskets = dataset.InvoiceBaskets(txs)
		}
	default:
		err = portrait.Errorf(portrait.EINVALID, "--format must be baskets or invoices, got %q", *format)
	}
	done()
	if err != nil {
		return err
	}
	res, err := fpgrowth.Mine(baskets, fpgrowth.Options{MinSupport: *minSup, MinConfidence: *minConf, MinLen: *minLen, MaxLen: *maxLen})
	if err != nil {
		return err
	}
	byLen := map[string]int{}
	for _, rule := range res.Rules {
		byLen[strconv.Itoa(rule.Len())]++
	}
	topRules := res.Rules[:min(max(*top, 0), len(res.Rules))]
	if a.json {
		return printJSON(stdout, map[string]any{
			"transactions": res.Transactions, "itemsets": len(res.Itemsets), "rules": len(res.Rules),
			"rules_by_length": byLen, "top": topRules,
			"min_support": *minSup, "min_confidence": *minConf,
		})
	}
	fmt.Fprintf(stdout, "FP-Growth: %d baskets, %d frequent itemsets, %d rules (support ≥ %g, confidence ≥ %g)\n",
		res.Transactions, len(res.Itemsets), len(res.Rules), *minSup, *minConf)
	lens := make([]string, 0, len(byLen))
	for l := range byLen {
		lens = append(lens, l)
	}
	sort.Slice(lens, func(i, j int) bool { x, _ := strconv.Atoi(lens[i]); y, _ := strconv.Atoi(lens[j]); return x < y })
	for _, l := range lens {
		fmt.Fprintf(stdout, "  length %s: %d rules\n", l, byLen[l])
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "rule\tsupport\tconfidence\tlift\tcount")
	for _, rule := range topRules {
		fmt.Fprintf(tw, "%s\t%.6f\t%.4f\t%.4f\t%d\n", rule.String(), rule.Support, rule.Confidence, rule.Lift, rule.Count)
	}
	return tw.Flush()
}

// --- purchases for clv and rfm ---

type purchaseFlags struct {
	format                   *string
	customer, date, amount   *string
	invoice, quantity, price *string
}

func addPurchaseFlags(fs *flag.FlagSet, defaultFormat string) *purchaseFlags {
	return &purchaseFlags{
		format:   fs.String("format", defaultFormat, "cdnow (CDNOW master or sample text), online-retail (UCI Online Retail CSV) or csv (name the columns)"),
		customer: fs.String("customer-column", "customer_id", "customer column for --format csv"),
		date:     fs.String("date-column", "date", "date column for --format csv"),
		amount:   fs.String("amount-column", "amount", "amount column for --format csv (empty: quantity × price)"),
		invoice:  fs.String("invoice-column", "", "order id column for --format csv (optional)"),
		quantity: fs.String("quantity-column", "", "quantity column for --format csv (optional)"),
		price:    fs.String("price-column", "", "unit price column for --format csv (with --quantity-column, when there is no amount)"),
	}
}

func (p *purchaseFlags) read(r io.Reader) ([]dataset.Transaction, error) {
	switch *p.format {
	case "cdnow":
		return dataset.ReadCDNOW(r, dataset.CDNOWAuto)
	case "online-retail":
		txs, _, err := dataset.ReadTransactionsCSV(r, dataset.OnlineRetail)
		return txs, err
	case "csv":
		txs, _, err := dataset.ReadTransactionsCSV(r, dataset.TxColumns{Customer: *p.customer, Time: *p.date,
			Amount: *p.amount, Quantity: *p.quantity, Price: *p.price, Invoice: *p.invoice})
		return txs, err
	}
	return nil, portrait.Errorf(portrait.EINVALID, "--format must be cdnow, online-retail or csv, got %q", *p.format)
}

// --- clv ---

func analyzeCLV(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a := newAnalyzeFlags("clv", "BG/NBD (purchase frequency and drop-out) and Gamma-Gamma (spend) by maximum likelihood, and discounted CLV.", stderr)
	pf := addPurchaseFlags(a.fs, "csv")
	endFlag := a.fs.String("calibration-end", "", "last day of the calibration period (default: 1997-09-30 for cdnow, as in Fader, Hardie & Lee; else the last purchase)")
	period := a.fs.Float64("period-days", 7, "model time unit in days (7: weeks)")
	months := a.fs.Int("months", 12, "CLV horizon in months")
	discount := a.fs.Float64("discount", 0.1, "annual discount rate for CLV")
	penalizer := a.fs.Float64("penalizer", 0, "L2 penalty on the parameters (lifetimes' penalizer_coef)")
	top := a.fs.Int("top", 10, "customers to list, by CLV")
	hoFlag := a.fs.String("holdout-end", "", "last day of the holdout period checked against the forecast (default: the last purchase, when it falls after the calibration end)")
	if help, err := a.parse(args); help || err != nil {
		return err
	}
	end, err := parseDay("calibration-end", *endFlag)
	if err != nil {
		return err
	}
	hoEnd, err := parseDay("holdout-end", *hoFlag)
	if err != nil {
		return err
	}
	if end.IsZero() && *pf.format == "cdnow" {
		end = time.Date(1997, 9, 30, 0, 0, 0, 0, time.UTC)
	}
	r, done, err := a.open()
	if err != nil {
		return err
	}
	txs, err := pf.read(r)
	done()
	if err != nil {
		return err
	}
	ps := make([]clv.Purchase, 0, len(txs))
	for _, t := range txs {
		// Returns are not purchases; CDNOW has none, order-line files do.
		if !dataset.IsCancellation(t) {
			ps = append(ps, clv.Purchase{Customer: t.Customer, Time: t.Time, Amount: t.Amount})
		}
	}
	cs, err := clv.Summarize(ps, clv.SummaryOptions{CalibrationEnd: end, PeriodDays: *period})
	if err != nil {
		return err
	}
	bg, err := clv.FitBGNBD(cs, clv.FitOptions{Penalizer: *penalizer})
	if err != nil {
		return err
	}
	gg, err := clv.FitGammaGamma(cs, clv.FitOptions{Penalizer: *penalizer})
	if err != nil {
		return err
	}
	vo := clv.ValueOptions{Months: *months, PeriodDays: *period, AnnualDiscount: *discount}
	scores, err := clv.ScoreAll(bg, gg, cs, vo)
	if err != nil {
		return err
	}
	sort.SliceStable(scores, func(i, j int) bool { return scores[i].CLV > scores[j].CLV })
	var total float64
	for _, s := range scores {
		total += s.CLV
	}
	if end.IsZero() {
		for _, t := range ps {
			if t.Time.After(end) {
				end = t.Time
			}
		}
	}
	// The holdout check: whatever the file holds after the calibration end
	// is what the forecast is compared with.
	var ho *clv.Holdout
	if !end.IsZero() {
		last := hoEnd
		if last.IsZero() {
			for _, t := range ps {
				if t.Time.After(last) {
					last = t.Time
				}
			}
		}
		if last.After(end.Add(24 * time.Hour)) {
			if ho, err = clv.CheckHoldout(ps, clv.HoldoutOptions{CalibrationEnd: end, HoldoutEnd: last, PeriodDays: *period, Fit: clv.FitOptions{Penalizer: *penalizer}}); err != nil {
				return err
			}
		} else if !hoEnd.IsZero() {
			return portrait.Errorf(portrait.EINVALID, "--holdout-end %s must fall after the calibration end %s", hoEnd.Format(time.DateOnly), end.Format(time.DateOnly))
		}
	}
	topScores := scores[:min(max(*top, 0), len(scores))]
	if a.json {
		return printJSON(stdout, map[string]any{
			"r": bg.R, "alpha": bg.Alpha, "a": bg.A, "b": bg.B, "loglik": bg.LogLik,
			"p": gg.P, "q": gg.Q, "gamma": gg.Gamma, "gg_loglik": gg.LogLik,
			"customers": len(cs), "repeat_buyers": gg.N, "calibration_end": end.Format(time.DateOnly),
			"period_days": *period, "months": *months, "annual_discount": *discount,
			"total_clv": total, "top": topScores, "holdout": ho,
		})
	}
	fmt.Fprintf(stdout, "BG/NBD on %d customers (calibration to %s, time unit %g days)\n", len(cs), end.Format(time.DateOnly), *period)
	fmt.Fprintf(stdout, "  r = %.4f  alpha = %.4f  a = %.4f  b = %.4f  log-likelihood = %.2f\n", bg.R, bg.Alpha, bg.A, bg.B, bg.LogLik)
	fmt.Fprintf(stdout, "Gamma-Gamma on %d repeat buyers\n", gg.N)
	fmt.Fprintf(stdout, "  p = %.4f  q = %.4f  gamma = %.4f  log-likelihood = %.2f\n", gg.P, gg.Q, gg.Gamma, gg.LogLik)
	fmt.Fprintf(stdout, "%d-month CLV at %.0f%% a year: total %.2f, mean %.2f per customer\n\n", *months, *discount*100, total, total/float64(len(cs)))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "customer\tP(alive)\tpurchases next 90d\tspend per purchase\tCLV")
	for _, s := range topScores {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.2f\t%.2f\n", s.ID, s.PAlive, s.ExpectedPurchases, s.ExpectedSpend, s.CLV)
	}
	if err := tw.Flush(); err != nil || ho == nil {
		return err
	}
	printHoldout(stdout, ho)
	return nil
}

func printHoldout(w io.Writer, h *clv.Holdout) {
	fmt.Fprintf(w, "\nHoldout check: fitted to %s, forecast %.2f periods to %s, for the %d customers of the calibration period\n",
		h.CalibrationEnd, h.HoldoutPeriods, h.HoldoutEnd, h.Customers)
	fmt.Fprintf(w, "  repeat purchases: actual %.0f, predicted %.1f (%+.1f%%); per customer MAE %.3f (carrying the calibration rate forward: %.3f), RMSE %.3f, correlation %.3f\n",
		h.Actual, h.Predicted, h.AggregateErrPct, h.MAE, h.NaiveMAE, h.RMSE, h.Correlation)
	if h.Spend != nil {
		fmt.Fprintf(w, "  revenue (%s): actual %.2f, predicted %.2f (%+.1f%%)\n", h.Spend.Inputs, h.Spend.Actual, h.Spend.Predicted, h.Spend.ErrPct)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "calibration repeat purchases\tcustomers\tholdout actual (mean)\tholdout predicted (mean)")
	for _, b := range h.ByFrequency {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\n", b.X, b.Customers, b.Actual, b.Predicted)
	}
	tw.Flush()
}

// --- churn ---

func analyzeChurn(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a := newAnalyzeFlags("churn", "L2 logistic regression on a labelled CSV: numeric columns as they are (blank cells imputed with the training mean, plus a missing indicator), text columns one-hot; stratified split with a fixed seed.", stderr)
	target := a.fs.String("target", "", "label column (required)")
	positive := a.fs.String("positive", "", "label value meaning churned/positive (default: 1, true, yes)")
	idCol := a.fs.String("id-column", "", "identifier column, never used as a feature")
	exclude := a.fs.String("exclude", "", "comma-separated columns to leave out")
	l2 := a.fs.Float64("l2", 1, "L2 penalty λ on standardized weights")
	testFrac := a.fs.Float64("test-fraction", 0.2, "share of rows held out for validation")
	seed := a.fs.Uint64("seed", 1, "seed of the stratified split")
	maxLevels := a.fs.Int("max-levels", 50, "text columns with more distinct values are left out")
	top := a.fs.Int("top", 15, "feature weights to list")
	if help, err := a.parse(args); help || err != nil {
		return err
	}
	if *target == "" {
		return portrait.Errorf(portrait.EINVALID, "analyze churn: --target COLUMN is required")
	}
	r, done, err := a.open()
	if err != nil {
		return err
	}
	ds, err := dataset.ReadLabelled(r, dataset.LabelledOptions{Target: *target, Positive: *positive, IDColumn: *idCol,
		Exclude: splitList(*exclude), MaxLevels: *maxLevels})
	done()
	if err != nil {
		return err
	}
	d := len(ds.Features)
	rep, err := logit.TrainEvaluate(ds.X, ds.Rows, d, ds.Y, ds.Features, logit.EvalOptions{
		Options: logit.Options{L2: *l2, Standardize: true}, TestFraction: *testFrac, Seed: *seed, Impute: ds.Numeric})
	if err != nil {
		return err
	}
	weights := rep.Weights[:min(max(*top, 0), len(rep.Weights))]
	if a.json {
		return printJSON(stdout, map[string]any{
			"auc": rep.AUC, "accuracy": rep.Accuracy, "n_train": rep.NTrain, "n_test": rep.NTest,
			"log_loss": rep.LogLoss, "base_rate": rep.BaseRate, "features": d, "dropped_columns": ds.Dropped,
			"auc_ci95": []float64{rep.AUCLow, rep.AUCHigh}, "brier": rep.Brier, "calibration_error": rep.CalError,
			"informative": rep.Informative, "verdict": rep.Verdict,
			"unlabelled_rows": ds.Unlabelled, "calibration": rep.Calibration, "weights": weights,
			"intercept": rep.Model.Intercept, "test_fraction": *testFrac, "seed": *seed,
		})
	}
	fmt.Fprintf(stdout, "churn model: %d rows (%d train, %d test), %d features\n", rep.NTrain+rep.NTest, rep.NTrain, rep.NTest, d)
	fmt.Fprintf(stdout, "held-out AUC %.4f, accuracy %.4f (base rate %.4f), log loss %.4f\n", rep.AUC, rep.Accuracy, rep.BaseRate, rep.LogLoss)
	fmt.Fprintf(stdout, "%s\n", rep.Verdict)
	for _, c := range ds.Dropped {
		fmt.Fprintf(stdout, "  left out %s\n", c)
	}
	if ds.Unlabelled > 0 {
		fmt.Fprintf(stdout, "  %d rows without a label were skipped\n", ds.Unlabelled)
	}
	fmt.Fprintln(stdout, "\ncalibration (test set):")
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "predicted\trows\tmean predicted\tobserved")
	for _, b := range rep.Calibration {
		fmt.Fprintf(tw, "%.1f–%.1f\t%d\t%.3f\t%.3f\n", b.Lo, b.Hi, b.Count, b.MeanPredicted, b.ObservedRate)
	}
	tw.Flush()
	fmt.Fprintln(stdout, "\nstrongest features (log-odds per standard deviation):")
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, w := range weights {
		fmt.Fprintf(tw, "%s\t%+.4f\n", w.Feature, w.StdWeight)
	}
	return tw.Flush()
}

// --- rfm ---

func analyzeRFM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a := newAnalyzeFlags("rfm", "Recency, frequency and monetary quintile scores and named segments over a date range.", stderr)
	pf := addPurchaseFlags(a.fs, "csv")
	from := a.fs.String("from", "", "first day included (default: unbounded)")
	to := a.fs.String("to", "", "first day excluded (default: unbounded)")
	asOf := a.fs.String("as-of", "", "day recency is measured to (default: --to, else the day after the last purchase)")
	bins := a.fs.Int("bins", 5, "score levels (5: quintiles)")
	customers := a.fs.Bool("customers", false, "include every customer's scores in the JSON output")
	if help, err := a.parse(args); help || err != nil {
		return err
	}
	var opt rfm.Options
	var err error
	if opt.From, err = parseDay("from", *from); err != nil {
		return err
	}
	if opt.To, err = parseDay("to", *to); err != nil {
		return err
	}
	if opt.AsOf, err = parseDay("as-of", *asOf); err != nil {
		return err
	}
	opt.Bins = *bins
	r, done, err := a.open()
	if err != nil {
		return err
	}
	txs, err := pf.read(r)
	done()
	if err != nil {
		return err
	}
	ps := make([]rfm.Purchase, len(txs))
	for i, t := range txs {
		ps[i] = rfm.Purchase{Customer: t.Customer, Order: t.Invoice, Time: t.Time, Amount: t.Amount}
	}
	res, err := rfm.Analyze(ps, opt)
	if err != nil {
		return err
	}
	if a.json {
		out := map[string]any{"customers": len(res.Customers), "as_of": res.AsOf.Format(time.DateOnly),
			"excluded": res.Excluded, "segments": res.Segments, "grid": res.Grid}
		if !res.From.IsZero() {
			out["from"] = res.From.Format(time.DateOnly)
		}
		if !res.To.IsZero() {
			out["to"] = res.To.Format(time.DateOnly)
		}
		if *customers {
			out["scores"] = res.Customers
		}
		return printJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "RFM: %d customers, recency as of %s, %d purchase lines left out (refunds, anonymous, outside the range)\n\n",
		len(res.Customers), res.AsOf.Format(time.DateOnly), res.Excluded)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "segment\tcustomers\tshare\trevenue")
	for _, s := range res.Segments {
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%.2f\n", s.Name, s.Customers, 100*s.Share, s.Revenue)
	}
	tw.Flush()
	fmt.Fprintln(stdout, "\ncustomers by recency score (rows, 5 = most recent) and frequency score (columns):")
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"R\\F"}
	for f := 1; f <= len(res.Grid); f++ {
		head = append(head, strconv.Itoa(f))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for r := len(res.Grid) - 1; r >= 0; r-- {
		row := []string{strconv.Itoa(r + 1)}
		for _, g := range res.Grid[r] {
			row = append(row, strconv.Itoa(g.Customers))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	return tw.Flush()
}
