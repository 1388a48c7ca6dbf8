package dataset

import (
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/portrait-cdp/portrait"
)

// LabelledOptions say how to turn a CSV into a binary classification problem.
type LabelledOptions struct {
	Target   string   // column holding the label (required)
	Positive string   // label value that means 1; empty accepts 1/true/yes/y
	IDColumn string   // optional identifier column, kept as IDs, never a feature
	Exclude  []string // further columns to ignore
	// MaxLevels drops categorical columns with more distinct values than this
	// (default 50): a free-text or id-like column would otherwise explode into
	// thousands of one-hot features that only memorise the training rows.
	MaxLevels int
}

// Labelled is a binary classification data set with numeric features.
// Numeric columns are copied, with NaN where the cell was blank and an extra
// "<column> missing" indicator feature when a column has any blank, so that
// the model can learn from missingness itself. Categorical columns are
// one-hot encoded as "<column>=<level>"; a blank categorical cell sets none.
type Labelled struct {
	Features []string
	Rows     int
	X        []float64 // Rows × len(Features), row-major
	Y        []float64 // 0 or 1
	IDs      []string  // from IDColumn, else the data line number
	// Numeric flags the features that came from numeric columns (as opposed
	// to one-hot and missing indicators), which are the ones to impute.
	Numeric []bool
	Dropped []string // columns left out, with the reason
	// Unlabelled counts rows skipped because the target cell was blank.
	Unlabelled int
}

// ReadLabelled reads a labelled CSV (header line required).
func ReadLabelled(r io.Reader, opt LabelledOptions) (*Labelled, error) {
	if strings.TrimSpace(opt.Target) == "" {
		return nil, portrait.Errorf(portrait.EINVALID, "the target column must be named")
	}
	if opt.MaxLevels <= 0 {
		opt.MaxLevels = 50
	}
	cr := newCSVReader(r)
	cr.ReuseRecord = false
	header, err := readHeader(cr)
	if err != nil {
		return nil, err
	}
	tj, err := columnIndex(header, opt.Target)
	if err != nil {
		return nil, err
	}
	idj := -1
	if opt.IDColumn != "" {
		if idj, err = columnIndex(header, opt.IDColumn); err != nil {
			return nil, err
		}
	}
	skip := map[int]bool{tj: true}
	if idj >= 0 {
		skip[idj] = true
	}
	for _, c := range opt.Exclude {
		j, err := columnIndex(header, strings.TrimSpace(c))
		if err != nil {
			return nil, err
		}
		skip[j] = true
	}

	var rows [][]string
	var lines []int
	out := &Labelled{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvErr(err)
		}
		line, _ := cr.FieldPos(0)
		if isBlank(rec[tj]) {
			out.Unlabelled++
			continue
		}
		rows = append(rows, rec)
		lines = append(lines, line)
	}
	if len(rows) == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "no labelled rows: column %q is blank everywhere", opt.Target)
	}

	// Labels.
	pos := strings.TrimSpace(opt.Positive)
	out.Y = make([]float64, len(rows))
	npos := 0
	for i, rec := range rows {
		v := strings.TrimSpace(rec[tj])
		var y bool
		if pos != "" {
			y = v == pos || strings.EqualFold(v, pos)
		} else {
			switch strings.ToLower(v) {
			case "1", "true", "yes", "y":
				y = true
			case "0", "false", "no", "n":
			default:
				return nil, cellError(lines[i], header[tj], "label %q is not 0/1, true/false or yes/no; say which value is positive", v)
			}
		}
		if y {
			out.Y[i] = 1
			npos++
		}
	}
	if npos == 0 || npos == len(rows) {
		return nil, portrait.Errorf(portrait.EINVALID, "target %q has a single class (%d positive of %d rows); a classifier needs both", opt.Target, npos, len(rows))
	}

	// Column kinds and encodings.
	type enc struct {
		col     int
		numeric bool
		missing bool           // numeric column with blanks: add an indicator
		levels  map[string]int // categorical level -> offset
		base    int            // first feature index
	}
	var encs []enc
	for j, name := range header {
		if skip[j] {
			continue
		}
		numeric, blanks, nonblank := true, false, 0
		for _, rec := range rows {
			c := strings.TrimSpace(rec[j])
			if c == "" {
				blanks = true
				continue
			}
			nonblank++
			if numeric {
				if v, err := strconv.ParseFloat(c, 64); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
					numeric = false
				}
			}
		}
		if nonblank == 0 {
			out.Dropped = append(out.Dropped, name+": blank in every row")
			continue
		}
		e := enc{col: j, numeric: numeric, base: len(out.Features)}
		if numeric {
			out.Features = append(out.Features, name)
			out.Numeric = append(out.Numeric, true)
			if blanks {
				e.missing = true
				out.Features = append(out.Features, name+" missing")
				out.Numeric = append(out.Numeric, false)
			}
			encs = append(encs, e)
			continue
		}
		set := map[string]bool{}
		for _, rec := range rows {
			if c := strings.TrimSpace(rec[j]); c != "" {
				set[c] = true
			}
		}
		if len(set) > opt.MaxLevels {
			out.Dropped = append(out.Dropped, name+": "+strconv.Itoa(len(set))+" distinct values, more than "+strconv.Itoa(opt.MaxLevels)+" levels")
			continue
		}
		if len(set) < 2 {
			out.Dropped = append(out.Dropped, name+": a single value")
			continue
		}
		lv := make([]string, 0, len(set))
		for v := range set {
			lv = append(lv, v)
		}
		sort.Strings(lv)
		e.levels = make(map[string]int, len(lv))
		for k, v := range lv {
			e.levels[v] = k
			out.Features = append(out.Features, name+"="+v)
			out.Numeric = append(out.Numeric, false)
		}
		encs = append(encs, e)
	}
	if len(out.Features) == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "no usable feature columns besides the target")
	}

	d := len(out.Features)
	out.Rows = len(rows)
	out.X = make([]float64, len(rows)*d)
	out.IDs = make([]string, len(rows))
	for i, rec := range rows {
		x := out.X[i*d : (i+1)*d]
		if idj >= 0 {
			out.IDs[i] = strings.TrimSpace(rec[idj])
		} else {
			out.IDs[i] = strconv.Itoa(lines[i])
		}
		for _, e := range encs {
			c := strings.TrimSpace(rec[e.col])
			if e.numeric {
				if c == "" {
					x[e.base] = math.NaN()
					x[e.base+1] = 1
					continue
				}
				v, _ := strconv.ParseFloat(c, 64)
				x[e.base] = v
				continue
			}
			if k, ok := e.levels[c]; ok {
				x[e.base+k] = 1
			}
		}
	}
	return out, nil
}
